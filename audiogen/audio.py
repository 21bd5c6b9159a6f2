"""Audio I/O and basic transforms: load/save with soundfile, resampling, channel mixing.

Audio tensors are float32 ``[C, T]`` (channels, samples) in [-1, 1]; batches are
``[B, C, T]``. Every problem with a file raises :class:`AudioError` naming the file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audiogen.errors import UserError
from audiogen.fileio import atomic_path

# Formats soundfile writes, by file suffix (soundfile picks the codec from the suffix).
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
READ_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au")


class AudioError(UserError):
    """An audio file that cannot be used: unreadable, empty, non-finite, bad format."""


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file (read without decoding the samples)."""

    path: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def info(path: str | os.PathLike) -> AudioInfo:
    """Read an audio file's header. Raises AudioError if it is missing or unreadable."""
    p = _existing(path)
    try:
        i = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{p}: cannot read audio ({_reason(e)})") from None
    frames = int(i.frames)
    # libsndfile reports a huge bogus frame count for some MP3s without a Xing header.
    if frames < 0 or frames > 2**40:
        frames = 0
    return AudioInfo(str(p), int(i.samplerate), int(i.channels), frames)


def load(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    channels: int | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[torch.Tensor, int]:
    """Load audio as float32 ``[C, T]`` and its sample rate.

    Args:
        sample_rate: resample to this rate (Hz) when given.
        channels: down-mix (mean) to 1 or up-mix (repeat mono) to this many channels.
        offset, duration: read only this span, in seconds of the file's own timeline.

    Raises AudioError naming the file when it is missing, unreadable, empty or has
    non-finite samples.
    """
    p = _existing(path)
    try:
        with sf.SoundFile(str(p)) as f:
            sr = int(f.samplerate)
            start = int(round(offset * sr))
            if start:
                f.seek(start)
            frames = -1 if duration is None else int(round(duration * sr))
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(f"{p}: cannot read audio ({_reason(e)})") from None
    if data.size == 0:
        raise AudioError(f"{p}: audio is empty (no samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{p}: audio contains non-finite samples (NaN or inf)")
    wav = torch.from_numpy(np.ascontiguousarray(data.T))  # [C, T]
    if channels is not None:
        wav = convert_channels(wav, channels)
    if sample_rate is not None and sample_rate != sr:
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    return wav, sr


def save(
    path: str | os.PathLike,
    wav: torch.Tensor,
    sample_rate: int,
    subtype: str | None = None,
    clip: bool = True,
) -> Path:
    """Write ``wav`` [C, T] (or [T]) atomically; the format follows the suffix.

    Samples are clipped to [-1, 1] unless ``clip=False``. Nothing is left at ``path``
    if writing fails.
    """
    p = Path(path)
    fmt = WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        known = ", ".join(WRITE_FORMATS)
        raise AudioError(f"{p}: unsupported output format '{p.suffix}' (use one of {known})")
    if wav.dim() == 1:
        wav = wav[None]
    if wav.dim() != 2:
        raise ValueError(f"save expects [C, T] audio, got shape {tuple(wav.shape)}")
    data = wav.detach().to("cpu", torch.float32).numpy().T  # [T, C]
    if not np.isfinite(data).all():
        raise AudioError(f"{p}: refusing to write non-finite samples")
    if clip:
        data = np.clip(data, -1.0, 1.0)
    if not p.parent.exists():
        raise AudioError(f"{p}: output directory {p.parent} does not exist")
    try:
        with atomic_path(p) as tmp:
            sf.write(str(tmp), data, int(sample_rate), format=fmt, subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"{p}: cannot write audio ({_reason(e)})") from None
    return p


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited resampling along the last axis (torchaudio's sinc kernel)."""
    if orig_sr == new_sr:
        return wav
    import torchaudio.functional as AF

    g = math.gcd(int(orig_sr), int(new_sr))
    return AF.resample(wav, int(orig_sr) // g, int(new_sr) // g)


def convert_channels(wav: torch.Tensor, channels: int) -> torch.Tensor:
    """Mix ``[C, T]`` audio to ``channels``: mean for down-mix, repeat for mono up-mix."""
    c = wav.shape[-2]
    if c == channels:
        return wav
    if channels == 1:
        return wav.mean(dim=-2, keepdim=True)
    if c == 1:
        return wav.expand(*wav.shape[:-2], channels, wav.shape[-1]).contiguous()
    if c > channels:
        return wav[..., :channels, :]
    raise AudioError(f"cannot convert {c}-channel audio to {channels} channels")


def loudness_db(wav: torch.Tensor, eps: float = 1e-10) -> float:
    """RMS level in dBFS of ``[C, T]`` audio (all channels pooled)."""
    rms = wav.float().pow(2).mean().clamp_min(eps).sqrt()
    return float(20.0 * torch.log10(rms))


def normalize_peak(wav: torch.Tensor, peak_db: float = -1.0) -> torch.Tensor:
    """Scale so the absolute peak sits at ``peak_db`` dBFS; silent audio is returned as is."""
    peak = wav.abs().max()
    if peak <= 0:
        return wav
    return wav * (10 ** (peak_db / 20.0) / peak)


def _existing(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such file")
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, expected an audio file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: file is empty (0 bytes)")
    return p


def _reason(e: Exception) -> str:
    msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    # libsndfile prefixes messages with the path; drop it since we name the file already.
    if ": " in msg and os.sep in msg.split(": ", 1)[0]:
        msg = msg.split(": ", 1)[1]
    return msg
