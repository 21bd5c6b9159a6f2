"""Melody conditioning: chroma from audio (MusicGen's way) or exactly from MIDI notes.

Chroma is ``[B, F, 12]``. With ``argmax=True`` each frame is one-hot on its dominant pitch
class, as MusicGen-melody does; a silent frame lands on bin 0 (C), which is also what the
null melody is, because MusicGen computes its null chroma from silence.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audiogen.conditioners.base import ConditionOutput


class ChromaExtractor(nn.Module):
    """Audio [B, T] (or [B, C, T], mixed to mono) at ``sample_rate`` → chroma [B, F, 12].

    Power spectrogram (window-normalised) → librosa chroma filter bank → max-normalised per
    frame → optional argmax one-hot. Defaults are MusicGen-melody's (n_fft 16384, hop 4096
    at 32 kHz). Pass ``frame_rate`` to put frames on the LM's grid instead
    (hop = sample_rate / frame_rate).
    """

    def __init__(
        self,
        *,
        sample_rate: int = 32000,
        n_fft: int = 16384,
        hop_length: int | None = 4096,
        frame_rate: float | None = None,
        n_chroma: int = 12,
        argmax: bool = True,
    ) -> None:
        super().__init__()
        import torchaudio

        if frame_rate is not None:
            hop_length = int(round(sample_rate / frame_rate))
        if hop_length is None:
            raise ValueError("give hop_length or frame_rate")
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_chroma = n_chroma
        self.argmax = argmax
        # librosa's chroma filter bank, made at the first forward: importing librosa.filters
        # (scipy.signal, numba) costs ~1.4 s, which loading a model should not pay.
        self.register_buffer("filters", None, persistent=False)
        self.spec = torchaudio.transforms.Spectrogram(
            n_fft=n_fft, win_length=n_fft, hop_length=hop_length, power=2, normalized=True
        )

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` of audio (centered STFT)."""
        return max(num_samples, self.n_fft) // self.hop_length + 1

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 3:
            wav = wav.mean(dim=1)
        if wav.shape[-1] < self.n_fft:
            pad = self.n_fft - wav.shape[-1]
            wav = nn.functional.pad(wav, (pad // 2, pad - pad // 2))
        spec = self.spec(wav.float())  # [B, n_fft // 2 + 1, F]
        if self.filters is None:
            import librosa

            fb = librosa.filters.chroma(
                sr=self.sample_rate, n_fft=self.n_fft, tuning=0, n_chroma=self.n_chroma
            )
            self.filters = torch.from_numpy(fb).float().to(spec.device)
        raw = torch.einsum("cf,bft->bct", self.filters, spec)
        chroma = nn.functional.normalize(raw, p=float("inf"), dim=1, eps=1e-6).transpose(1, 2)
        if self.argmax:
            chroma = one_hot_argmax(chroma)
        return chroma  # [B, F, 12]


def one_hot_argmax(chroma: torch.Tensor) -> torch.Tensor:
    """One-hot on the largest bin of each frame: [..., 12] → [..., 12]."""
    idx = chroma.argmax(dim=-1)
    return nn.functional.one_hot(idx, chroma.shape[-1]).to(chroma.dtype)


def null_chroma(num_frames: int, n_chroma: int = 12) -> torch.Tensor:
    """The null melody [F, 12]: one-hot on bin 0 (what MusicGen's chroma of silence gives)."""
    c = torch.zeros(num_frames, n_chroma)
    c[:, 0] = 1.0
    return c


def chroma_from_notes(
    notes, frame_rate: float, num_frames: int | None = None, argmax: bool = True
) -> torch.Tensor:
    """Exact chroma [F, 12] from MIDI notes (``audiogen.midi.Note``) on a frame grid.

    With ``argmax`` each sounding frame is one-hot on its dominant pitch class and rests
    become bin 0, matching the audio path.
    """
    from audiogen import midi

    c = torch.from_numpy(midi.chroma(notes, frame_rate, num_frames))
    if argmax:
        c = one_hot_argmax(c)  # rests: argmax of zeros is bin 0, like silence in audio
    return c


def load_melody_chroma(
    path: str | os.PathLike,
    extractor: ChromaExtractor,
    duration: float | None = None,
) -> torch.Tensor:
    """Chroma [F, 12] of a melody file: MIDI (exact, from its highest voice) or audio."""
    from audiogen import audio, midi

    p = Path(path)
    if p.suffix.lower() in (".mid", ".midi"):
        notes = midi.load_notes(p, melody=True)
        dur = duration if duration is not None else midi.end_time(notes)
        frames = extractor.num_frames(int(round(dur * extractor.sample_rate)))
        return chroma_from_notes(notes, extractor.frame_rate, frames, argmax=extractor.argmax)
    wav, _ = audio.load(p, sample_rate=extractor.sample_rate, channels=1, duration=duration)
    return extractor(wav)[0]


@dataclass
class MelodyTokens:
    """Batched chroma [B, F, 12] with mask [B, F] (bool) and present [B] (False = null)."""

    chroma: torch.Tensor
    mask: torch.Tensor
    present: torch.Tensor

    def to(self, device: torch.device | str) -> MelodyTokens:
        return MelodyTokens(self.chroma.to(device), self.mask.to(device), self.present.to(device))


class MelodyConditioner(nn.Module):
    """Chroma → ``(emb [B, F, D], mask [B, F])`` through a linear projection (with bias).

    The projection is MusicGen-melody's ``audio_enc_to_dec_proj``. With ``chroma_length``
    set, each melody is tiled (repeated) and cut to exactly that many frames, as
    MusicGen-melody does; otherwise shorter melodies are padded with null frames and masked.
    """

    def __init__(
        self,
        *,
        extractor: ChromaExtractor,
        output_dim: int,
        chroma_length: int | None = None,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.output_dim = output_dim
        self.chroma_length = chroma_length
        self.proj = nn.Linear(extractor.n_chroma, output_dim)

    def tokenize(
        self, melodies: Sequence[torch.Tensor | np.ndarray | None], num_frames: int | None = None
    ) -> MelodyTokens:
        """Batch melodies given as audio [C, T] / [T] tensors at the extractor's rate, as
        chroma arrays [F, 12], or ``None`` (null). ``num_frames`` sizes null-only batches."""
        chromas: list[torch.Tensor | None] = []
        for m in melodies:
            if m is None:
                chromas.append(None)
            elif isinstance(m, np.ndarray) or (m.dim() == 2 and m.shape[-1] == 12):
                chromas.append(torch.as_tensor(m, dtype=torch.float32))
            else:
                chromas.append(self.extractor(m.reshape(1, -1) if m.dim() == 1 else m[None])[0])
        lengths = [c.shape[0] for c in chromas if c is not None]
        frames = self.chroma_length or max(lengths, default=num_frames or 1)
        out = torch.zeros(len(chromas), frames, self.extractor.n_chroma)
        mask = torch.zeros(len(chromas), frames, dtype=torch.bool)
        for i, c in enumerate(chromas):
            if c is None:
                c = null_chroma(frames, self.extractor.n_chroma)
            if self.chroma_length is not None:
                c = c.repeat(math.ceil(frames / c.shape[0]), 1)[:frames]
                mask[i] = True
            else:
                c = c[:frames]
                mask[i, : c.shape[0]] = True
                out[i, c.shape[0] :, 0] = 1.0  # null frames in the padding
            out[i, : c.shape[0]] = c
        present = torch.tensor([m is not None for m in melodies], dtype=torch.bool)
        return MelodyTokens(out, mask, present)

    def forward(self, tokens: MelodyTokens) -> ConditionOutput:
        """Project chroma: emb [B, F, output_dim], mask [B, F] bool."""
        emb = self.proj(tokens.chroma.to(self.proj.weight.dtype))
        return ConditionOutput(emb=emb * tokens.mask[..., None], mask=tokens.mask)
