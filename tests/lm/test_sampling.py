"""Top-k sampling: the compiled sampler and torch's path draw from the same distribution,
never outside the k most likely ids, and a seed repeats its draws."""

from __future__ import annotations

import pytest
import torch

from audiogen.lm import sampling
from audiogen.lm.sampling import SamplingParams, sample_top_k, select_next

PATHS = ["compiled", "torch"]


def _path(monkeypatch, path: str) -> None:
    if path == "torch":
        monkeypatch.setattr(sampling, "_top_k_kernel", lambda: None)
    else:
        assert sampling._top_k_kernel() is not None  # a compiler is there: it must build


def _expected(row: torch.Tensor, k: int, temperature: float) -> torch.Tensor:
    values, ids = torch.topk(row.double(), k)
    p = torch.zeros(row.shape[-1], dtype=torch.float64)
    p[ids] = torch.softmax(values / temperature, dim=-1)
    return p


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("k,temperature", [(10, 0.8), (1024, 1.0), (3, 2.5)])
def test_frequencies_follow_the_top_k_softmax(path, k, temperature, monkeypatch):
    _path(monkeypatch, path)
    g = torch.Generator().manual_seed(0)
    row = torch.randn(1024, generator=g) * 2
    n = 40_000
    ids = sample_top_k(row.expand(n, -1), k=k, temperature=temperature, generator=g)
    assert ids.shape == (n,) and ids.dtype == torch.long
    freq = torch.bincount(ids, minlength=1024).double() / n
    p = _expected(row, k, temperature)
    assert float(freq[p == 0].sum()) == 0.0  # never outside the top k
    sigma = (p * (1 - p) / n).sqrt()  # + a few counts: rare ids are Poisson, not normal
    assert bool(((freq - p).abs() <= 5 * sigma + 3 / n).all())


@pytest.mark.parametrize("path", PATHS)
def test_ties_and_minus_infinity(path, monkeypatch):
    _path(monkeypatch, path)
    g = torch.Generator().manual_seed(1)
    ties = torch.zeros(4000, 16)  # 16 equal logits, k = 5: exactly 5 ids drawn from
    ids = sample_top_k(ties, k=5, temperature=1.0, generator=g)
    assert len(torch.unique(ids)) == 5
    masked = torch.full((4000, 16), float("-inf"))
    masked[:, 3], masked[:, 11] = 0.0, 1.0  # two finite logits, k larger than that
    ids = sample_top_k(masked, k=6, temperature=1.0, generator=g)
    assert set(torch.unique(ids).tolist()) == {3, 11}


def test_a_seed_repeats_its_draws_and_batches_are_rows():
    logits = torch.randn(2, 4, 64)
    params = SamplingParams(top_k=8, temperature=1.1)
    a = select_next(logits, params=params, generator=torch.Generator().manual_seed(9))
    b = select_next(logits, params=params, generator=torch.Generator().manual_seed(9))
    assert a.shape == (2, 4) and torch.equal(a, b)
    top = torch.topk(logits, 8, dim=-1).indices
    assert bool((top == a[..., None]).any(-1).all())


def test_nan_logits_fall_back_to_torch_which_refuses_them():
    row = torch.zeros(2, 8)
    row[1, 2] = float("nan")
    assert sampling._sample_top_k_native(row, 3, 1.0, None) is None
