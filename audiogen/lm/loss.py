"""Per-codebook cross-entropy over valid pattern positions (MusicGen's training loss)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LMLoss:
    """total: scalar, mean of the per-codebook losses; per_codebook: ``[K]``."""

    total: torch.Tensor
    per_codebook: torch.Tensor


def codebook_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> LMLoss:
    """Cross-entropy per codebook, averaged over positions where ``mask`` is True.

    logits: ``[B, K, S, card]``; targets: ``[B, K, S]`` int64; mask: ``[B, K, S]`` bool.
    For a pattern sequence ``seq`` the LM input is ``seq[..., :-1]`` and the targets and
    mask are ``seq[..., 1:]`` / ``mask[..., 1:]`` (position s predicts step s + 1).
    """
    k = logits.shape[1]
    card = logits.shape[-1]
    safe = targets.clamp(0, card - 1)  # the special token is never a target (it is masked)
    ce = F.cross_entropy(logits.reshape(-1, card).float(), safe.reshape(-1), reduction="none").view(
        targets.shape
    )
    m = mask.to(ce.dtype)
    per = (ce * m).sum(dim=(0, 2)) / m.sum(dim=(0, 2)).clamp_min(1.0)
    return LMLoss(total=per.mean(), per_codebook=per.view(k))
