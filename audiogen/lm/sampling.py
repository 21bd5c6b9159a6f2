"""Next-token selection: greedy, top-k, top-p (nucleus), temperature; seeded.

All functions take logits ``[N, card]`` (float32 recommended) and return ids ``[N]`` int64.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch

from audiogen import native


@dataclass
class SamplingParams:
    """How to pick the next token. ``top_p > 0`` takes precedence over ``top_k`` (as in
    audiocraft); ``use_sampling=False``, ``top_k == 1`` or ``temperature == 0`` is greedy."""

    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    use_sampling: bool = True

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"top_p must be in [0, 1], got {self.top_p}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")

    @property
    def greedy(self) -> bool:
        return (
            not self.use_sampling or self.temperature == 0 or (self.top_k == 1 and self.top_p == 0)
        )


def _multinomial(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.multinomial(probs, num_samples=1, generator=generator)[:, 0]


@cache
def _top_k_kernel():
    """``audiogen/native/decode.c``'s top-k sampler, or None when it did not build."""
    return native.function("decode", "topk_sample_f32", "ptr i64 i64 i64 i64 f32 ptr ptr", "int")


def _sample_top_k_native(
    logits: torch.Tensor, k: int, temperature: float, generator: torch.Generator | None
) -> torch.Tensor | None:
    """The compiled top-k sampler for CPU fp32 logits, one uniform draw per row from
    ``generator``; None when it is unavailable or the logits do not fit it (NaN, no finite
    maximum), and the caller samples with torch."""
    fn = _top_k_kernel()
    if fn is None or logits.device.type != "cpu" or logits.dtype != torch.float32:
        return None
    if logits.stride(-1) != 1 or logits.requires_grad:
        return None
    n, card = logits.shape
    u = torch.rand(n, generator=generator)
    ids = torch.empty(n, dtype=torch.long)
    status = fn(
        logits.data_ptr(), logits.stride(0), n, card, k, temperature, u.data_ptr(), ids.data_ptr()
    )
    if status == -1:
        raise MemoryError(f"top-k sampling: no scratch for {card} logits")
    return ids if status == 0 else None


def sample_top_k(
    logits: torch.Tensor, *, k: int, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Sample among the k most likely ids. logits ``[N, card]`` -> ``[N]``.

    On CPU with fp32 logits a compiled loop does it (one uniform draw per row, the
    cumulative weights walked in id order); elsewhere, or with ``AUDIOGEN_NATIVE=0``,
    ``torch.topk`` and ``torch.multinomial``. Both sample the same distribution, but a
    seed gives different draws on the two paths."""
    k = min(k, logits.shape[-1])
    ids = _sample_top_k_native(logits, k, temperature, generator)
    if ids is not None:
        return ids
    values, indices = torch.topk(logits, k, dim=-1)
    probs = torch.softmax(values / temperature, dim=-1)
    choice = _multinomial(probs, generator)
    return indices.gather(-1, choice[:, None])[:, 0]


def sample_top_p(
    logits: torch.Tensor, *, p: float, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Nucleus sampling: smallest set of ids whose probability mass reaches p."""
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_probs, sorted_idx = torch.sort(probs, dim=-1, descending=True)
    cum = torch.cumsum(sorted_probs, dim=-1)
    # Drop an id when the mass before it already reaches p (so the top id always stays).
    sorted_probs = sorted_probs.masked_fill(cum - sorted_probs > p, 0.0)
    choice = _multinomial(sorted_probs, generator)
    return sorted_idx.gather(-1, choice[:, None])[:, 0]


def select_next(
    logits: torch.Tensor, *, params: SamplingParams, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Pick next ids. logits ``[..., card]`` -> ids ``[...]`` int64."""
    shape = logits.shape[:-1]
    flat = logits.reshape(-1, logits.shape[-1]).float()
    if params.greedy:
        ids = flat.argmax(dim=-1)
    elif params.top_p > 0:
        ids = sample_top_p(
            flat, p=params.top_p, temperature=params.temperature, generator=generator
        )
    elif params.top_k > 0:
        ids = sample_top_k(
            flat, k=params.top_k, temperature=params.temperature, generator=generator
        )
    else:
        probs = torch.softmax(flat / params.temperature, dim=-1)
        ids = _multinomial(probs, generator)
    return ids.view(shape)
