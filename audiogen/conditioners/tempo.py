"""A beat clock: the prompt's tempo as a frame-aligned condition.

A sentence encoder hears "96 bpm" as two tokens among many and small LMs learn little from
them (the tiny model followed the tempo in 25% of its clips). This conditioner reads the
tempo from the prompt (``"... at 96 bpm"``) and gives the LM, at every codec frame, where
that frame falls in the beat: ``cos`` and ``sin`` of ``2 pi h phi`` for each harmonic ``h``
(1: the beat, 2, 3, 4: its halves, thirds and quarters), with ``phi`` the time in beats
since the grid's origin, plus ``log2(bpm / 100)``. The LM adds a projection of these to its
inputs (the ``sum`` fuse), so it can put its onsets where the clock ticks instead of
inferring a period from a number.

The grid's origin is the start of the clip at generation; in training it is the start of
the piece (the rendered corpus puts every note on that grid: a window that starts at frame
``s`` starts ``s / frame_rate * bpm / 60`` beats in). A prompt without a tempo, a dropped
caption and the CFG null branch get no clock (zero input, masked). The projection starts at
zero, so adding the clock to a trained LM changes nothing until it is trained.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from audiogen.conditioners.base import ConditionOutput

MIN_BPM, MAX_BPM = 20.0, 400.0
_BPM = re.compile(
    r"(?<![\w.])(\d{1,3}(?:\.\d+)?)\s*(?:-\s*)?(?:bpm|beats per minute)(?![a-z])", re.IGNORECASE
)


def bpm_from_text(text: str | None) -> float | None:
    """The first tempo a prompt states ("96 bpm", "at 120BPM", "72 beats per minute"), or
    None when it states none in [20, 400]."""
    if not text:
        return None
    for m in _BPM.finditer(text):
        bpm = float(m.group(1))
        if MIN_BPM <= bpm <= MAX_BPM:
            return bpm
    return None


def check_harmonics(harmonics: Sequence[int]) -> None:
    """ValueError unless ``harmonics`` is a non-empty list of positive integers."""
    if not harmonics or any(int(h) != h or h < 1 for h in harmonics):
        raise ValueError(f"tempo.harmonics must be positive integers, got {list(harmonics)}")


@dataclass
class TempoTokens:
    """bpm [B] float (0 where absent), present [B] bool, beats [B] float (the beat phase at
    the first frame), for ``num_frames`` frames."""

    bpm: torch.Tensor
    present: torch.Tensor
    beats: torch.Tensor
    num_frames: int

    def to(self, device: torch.device | str) -> TempoTokens:
        return TempoTokens(
            self.bpm.to(device), self.present.to(device), self.beats.to(device), self.num_frames
        )

    def null(self) -> TempoTokens:
        """The same shapes with no clock (the CFG null branch)."""
        return TempoTokens(
            torch.zeros_like(self.bpm),
            torch.zeros_like(self.present),
            torch.zeros_like(self.beats),
            self.num_frames,
        )


def beat_clock(
    bpm: torch.Tensor,
    beats: torch.Tensor,
    num_frames: int,
    frame_rate: float,
    harmonics: Sequence[int],
) -> torch.Tensor:
    """Clock features ``[B, F, 2 H + 1]`` for tempi ``bpm [B]`` starting ``beats [B]`` into
    the beat grid: ``cos, sin (2 pi h phi)`` per harmonic, then ``log2(bpm / 100)``.

    The phase is computed in float64 and wrapped before the trigonometry, so a frame far
    into a piece gets the same features as the same phase near its start."""
    t = torch.arange(num_frames, dtype=torch.float64, device=bpm.device) / frame_rate
    phi = beats.double()[:, None] + t[None] * (bpm.double()[:, None] / 60.0)  # [B, F] beats
    h = torch.as_tensor(list(harmonics), dtype=torch.float64, device=bpm.device)
    ang = 2 * math.pi * torch.remainder(phi[..., None] * h, 1.0)  # [B, F, H]
    rate = torch.log2(bpm.double().clamp(min=MIN_BPM) / 100.0)[:, None, None]
    feats = torch.cat([torch.cos(ang), torch.sin(ang), rate.expand(-1, num_frames, 1)], dim=-1)
    return feats.float()


class TempoConditioner(nn.Module):
    """The beat clock → ``(emb [B, F, D], mask [B, F])`` through a zero-initialised linear
    projection; rows without a tempo are zero and masked."""

    def __init__(
        self, *, output_dim: int, frame_rate: float, harmonics: Sequence[int] = (1, 2, 3, 4)
    ) -> None:
        super().__init__()
        check_harmonics(harmonics)
        self.frame_rate = float(frame_rate)
        self.harmonics = [int(h) for h in harmonics]
        self.output_dim = output_dim
        self.proj = nn.Linear(2 * len(self.harmonics) + 1, output_dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def tokenize(
        self,
        texts: Sequence[str | None],
        num_frames: int,
        *,
        start_frames: Sequence[int] | None = None,
    ) -> TempoTokens:
        """The tempo each text states, for ``num_frames`` frames; ``start_frames`` (training
        windows) are where each window starts in its piece, whose first frame is on a beat."""
        bpms = [bpm_from_text(t) for t in texts]
        bpm = torch.tensor([b or 0.0 for b in bpms], dtype=torch.float32)
        present = torch.tensor([b is not None for b in bpms], dtype=torch.bool)
        starts = torch.zeros(len(bpms), dtype=torch.float64)
        if start_frames is not None:
            starts = torch.as_tensor(list(start_frames), dtype=torch.float64)
        beats = torch.remainder(starts / self.frame_rate * bpm.double() / 60.0, 1.0)
        return TempoTokens(bpm, present, beats.float(), int(num_frames))

    def forward(self, tokens: TempoTokens) -> ConditionOutput:
        feats = beat_clock(
            tokens.bpm, tokens.beats, tokens.num_frames, self.frame_rate, self.harmonics
        )
        mask = tokens.present[:, None].expand(-1, tokens.num_frames)
        emb = self.proj(feats.to(self.proj.weight.dtype)) * mask[..., None]
        return ConditionOutput(emb=emb, mask=mask)
