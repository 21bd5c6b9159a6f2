"""stochastic_round is unbiased and returns neighbours; AdamW matches torch in fp32."""

from __future__ import annotations

import math

import pytest
import torch

from audiogen.train import optim
from audiogen.train.optim import AdamW, stochastic_round


@pytest.fixture(params=["native", "torch"])
def path(request, monkeypatch) -> str:
    """Run a test on the compiled one-pass kernels and again on the pure-torch path."""
    if request.param == "torch":
        monkeypatch.setattr(optim, "_kernels", lambda: None)
    else:
        assert optim._kernels() is not None, "the C kernels did not build (is cc installed?)"
    return request.param


def _neighbours(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The bf16 values just below and above |x| (with x's sign), as fp32 ``[...]``."""
    bits = x.view(torch.int32)
    low = (bits & -65536).view(torch.float32)
    high = ((bits & -65536) + 65536).view(torch.float32)
    return low, high


@pytest.mark.parametrize("value", [1 + 1 / 3, -math.pi, 3e-3 * math.e, 12345.678, 1e-39])
def test_stochastic_round_unbiased_and_neighbours(value: float, path: str) -> None:
    n = 100_000
    x = torch.full((n,), value, dtype=torch.float32)
    out = stochastic_round(x, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.bfloat16 and out.shape == x.shape
    low, high = (t[0].item() for t in _neighbours(x[:1]))
    got = out.float()
    assert bool(((got == low) | (got == high)).all())
    x32 = x[0].item()
    p = (x32 - low) / (high - low)
    stderr = abs(high - low) * math.sqrt(p * (1 - p) / n)
    assert abs(got.double().mean().item() - x32) <= 3 * stderr + 1e-30


def test_stochastic_round_random_values_hit_neighbours_only(path: str) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 1000, generator=g) * torch.logspace(-20, 20, 1000)
    got = stochastic_round(x, generator=g).float()
    low, high = _neighbours(x)
    assert bool(((got == low) | (got == high)).all())
    exact = x.bfloat16().float()  # representable values must come back unchanged
    assert torch.equal(stochastic_round(exact, generator=g).float(), exact)


def test_stochastic_round_special_values(path: str) -> None:
    big = torch.finfo(torch.bfloat16).max
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 3.4e38, -3.4e38, 0.0, -0.0])
    out = stochastic_round(x).float()
    assert math.isnan(out[0])
    assert out[1] == math.inf and out[2] == -math.inf
    assert out[3] == big and out[4] == -big  # finite stays finite
    assert out[5] == 0 and out[6] == 0 and math.copysign(1, out[6]) == -1


def test_stochastic_round_is_seeded(path: str) -> None:
    x = torch.randn(1000)
    a = stochastic_round(x, generator=torch.Generator().manual_seed(3))
    b = stochastic_round(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_adamw_matches_torch_in_fp32() -> None:
    torch.manual_seed(0)
    shapes = [(7, 5), (5,), (3, 2, 4)]
    ours_p = [torch.randn(s, requires_grad=True) for s in shapes]
    ref_p = [p.detach().clone().requires_grad_() for p in ours_p]
    kw = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    ours = AdamW([{"params": ours_p[:2]}, {"params": ours_p[2:], "lr": 3e-3}], **kw)
    ref = torch.optim.AdamW([{"params": ref_p[:2]}, {"params": ref_p[2:], "lr": 3e-3}], **kw)
    for _ in range(100):
        for p, q in zip(ours_p, ref_p, strict=True):
            g = torch.randn_like(p)
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    for p, q in zip(ours_p, ref_p, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_adamw_bf16_state_is_8_bytes_per_param(path: str) -> None:
    p = torch.nn.Parameter(torch.randn(64, 32, dtype=torch.bfloat16))
    p.grad = torch.randn_like(p)
    opt = AdamW([p], lr=1e-3)
    opt.step()
    st = opt.state[p]
    assert st["exp_avg"].dtype == st["exp_avg_sq"].dtype == torch.bfloat16
    per_param = sum(t.element_size() for t in (p, p.grad, st["exp_avg"], st["exp_avg_sq"]))
    assert per_param == 8


@pytest.mark.parametrize("sr", [True, False])
def test_tiny_updates_survive_only_with_stochastic_rounding(sr: bool, path: str) -> None:
    # Adam moves each weight by ~lr per step; at 1.0 a bf16 ulp is 2**-7, so an update of
    # 1e-4 is lost by round-to-nearest but kept on average by stochastic rounding.
    n, steps, lr = 4096, 50, 1e-4
    p = torch.nn.Parameter(torch.ones(n, dtype=torch.bfloat16))
    opt = AdamW(
        [p],
        lr=lr,
        weight_decay=0.0,
        stochastic_rounding=sr,
        generator=torch.Generator().manual_seed(0),
    )
    for _ in range(steps):
        p.grad = torch.ones_like(p)  # constant gradient: each step moves the weight by -lr
        opt.step()
    moved = 1.0 - p.float().mean().item()
    if sr:
        assert moved == pytest.approx(steps * lr, rel=0.1)
    else:
        assert moved == 0.0


def test_adamw_bf16_chunking_does_not_change_the_math(path: str) -> None:
    def run(chunk: int) -> list[torch.Tensor]:
        torch.manual_seed(0)
        ps = [torch.nn.Parameter(torch.randn(s, dtype=torch.bfloat16)) for s in [(33, 7), (5,)]]
        opt = AdamW(ps, lr=1e-2, stochastic_rounding=False, chunk_size=chunk)
        for _ in range(5):
            for p in ps:
                p.grad = torch.randn_like(p)
            opt.step()
        return ps

    for a, b in zip(run(1 << 18), run(17), strict=True):
        assert torch.equal(a, b)


def _bf16_run(native: bool, sr: bool, threads: int | None = None) -> list[torch.Tensor]:
    """Five AdamW steps on bf16 tensors that straddle the kernel's 8192-element blocks."""
    g = torch.Generator().manual_seed(0)
    shapes = [(100, 97), (5,), (8192,), (3, 4000)]
    ps = [torch.nn.Parameter(torch.randn(s, generator=g).bfloat16()) for s in shapes]
    opt = AdamW(
        ps,
        lr=1e-2,
        weight_decay=0.1,
        stochastic_rounding=sr,
        native=native,
        generator=torch.Generator().manual_seed(1),
    )
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        for _ in range(5):
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g).bfloat16()
            opt.step()
    finally:
        torch.set_num_threads(before)
    return [p.detach().float() for p in ps]


def test_native_kernel_matches_torch_path_with_round_to_nearest() -> None:
    # The same fp32 formula in C and in torch's fused kernel, rounded to nearest-even: the
    # evaluation orders differ, so a few values land one bf16 step apart and then drift by
    # at most a few Adam steps (lr 1e-2 each).
    for a, b in zip(_bf16_run(True, False), _bf16_run(False, False), strict=True):
        assert (a == b).float().mean() > 0.99
        assert (a - b).abs().max() <= 1e-2


def test_native_stochastic_rounding_tracks_fp32_and_ignores_thread_count() -> None:
    one, two = _bf16_run(True, True, threads=1), _bf16_run(True, True, threads=2)
    rne = _bf16_run(False, False)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)
    # Stochastic rounding moves each value by under one bf16 step per write, without bias.
    a, b = torch.cat([t.flatten() for t in one]), torch.cat([t.flatten() for t in rne])
    diff = a - b
    assert bool((diff.abs() <= 5 * 2.0**-7 * b.abs() + 1e-2).all())
    assert abs(diff.mean().item()) < 2e-4
