"""Next-token selection: greedy, top-k, top-p (nucleus), temperature; seeded.

All functions take logits ``[N, card]`` (float32 recommended) and return ids ``[N]`` int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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


def sample_top_k(
    logits: torch.Tensor, *, k: int, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Sample among the k most likely ids. logits ``[N, card]`` -> ``[N]``."""
    k = min(k, logits.shape[-1])
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
