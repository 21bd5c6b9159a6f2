"""Shared types for conditioners and the CFG dropout of raw inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


@dataclass
class ConditionOutput:
    """A condition projected to the LM width.

    emb: [B, S, D] float, zero where ``mask`` is False.
    mask: [B, S] bool, True for positions the LM may attend to.
    """

    emb: torch.Tensor
    mask: torch.Tensor


def dropout_inputs(
    inputs: Sequence[T | None], p: float, generator: torch.Generator | None = None
) -> list[T | None]:
    """Replace each raw input by ``None`` (the null condition) with probability ``p``.

    Used in training for classifier-free guidance, per condition (text and melody drop
    independently). Seeded through ``generator`` so a resumed run drops the same items.
    """
    if p <= 0:
        return list(inputs)
    keep = torch.rand(len(inputs), generator=generator) >= p
    return [x if bool(k) else None for x, k in zip(inputs, keep, strict=True)]
