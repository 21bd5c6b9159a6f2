"""Fuse named conditions into what the LM consumes: cross-attention memory, a prefix, and/or
frame-aligned inputs.

``cross`` conditions are concatenated along S into the cross-attention memory; ``prepend``
conditions are concatenated, in the order the modes are given, into a prefix that the LM
puts before its token embeddings (MusicGen-melody puts chroma first, then text); ``sum``
conditions (already on the codec's frame grid) are added together, zero-padded to the
longest, into ``frame``, which the LM adds to its token embeddings position by position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch

from audiogen.conditioners.base import ConditionOutput

FuseMode = Literal["cross", "prepend", "sum"]
FUSE_MODES = ("cross", "prepend", "sum")


@dataclass
class FusedCondition:
    """cross: [B, Sc, D] | None, cross_mask: [B, Sc] bool | None,
    prefix: [B, P, D] | None, prefix_mask: [B, P] bool | None, frame: [B, F, D] | None."""

    cross: torch.Tensor | None = None
    cross_mask: torch.Tensor | None = None
    prefix: torch.Tensor | None = None
    prefix_mask: torch.Tensor | None = None
    frame: torch.Tensor | None = None


class ConditionFuser:
    """Route each named condition to cross-attention, the prefix or the frame inputs.

    ``modes`` maps condition name → ``"cross"``, ``"prepend"`` or ``"sum"``; its order is the
    concatenation order. Conditions not named are an error, so a typo cannot silently drop
    a condition.
    """

    def __init__(self, modes: Mapping[str, FuseMode]) -> None:
        bad = {k: v for k, v in modes.items() if v not in FUSE_MODES}
        if bad:
            raise ValueError(f"unknown fuse mode(s) {bad}; use one of {', '.join(FUSE_MODES)}")
        self.modes = dict(modes)

    def __call__(self, conditions: Mapping[str, ConditionOutput]) -> FusedCondition:
        unknown = set(conditions) - set(self.modes)
        if unknown:
            raise ValueError(f"no fuse mode for condition(s) {sorted(unknown)}")
        parts: dict[str, list[ConditionOutput]] = {mode: [] for mode in FUSE_MODES}
        for name, mode in self.modes.items():
            if name in conditions:
                parts[mode].append(conditions[name])
        cross = _cat_seq(parts["cross"])
        prefix = _cat_seq(parts["prepend"])
        return FusedCondition(cross[0], cross[1], prefix[0], prefix[1], _sum_frames(parts["sum"]))


def _sum_frames(outs: list[ConditionOutput]) -> torch.Tensor | None:
    if not outs:
        return None
    length = max(o.emb.shape[1] for o in outs)
    total = None
    for o in outs:
        emb = o.emb * o.mask[..., None].to(o.emb.dtype)  # masked frames add nothing
        emb = torch.nn.functional.pad(emb, (0, 0, 0, length - emb.shape[1]))
        total = emb if total is None else total + emb
    return total


def _cat_seq(outs: list[ConditionOutput]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if not outs:
        return None, None
    return torch.cat([o.emb for o in outs], dim=1), torch.cat([o.mask for o in outs], dim=1)
