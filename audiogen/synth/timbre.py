"""Learned timbre: a tiny decoder from (f0, loudness) to harmonic and noise controls.

``fit_timbre`` trains it on a monophonic recording (f0 from librosa.pyin, A-weighted
loudness) with the multi-scale spectral loss; ``render_timbre`` then plays any notes in that
timbre, driving loudness from velocity and an ADSR. The file is safetensors with the
resolved :class:`TimbreConfig` as JSON in its metadata (never pickle).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from audiogen.fileio import atomic_path
from audiogen.synth.errors import SynthError
from audiogen.synth.presets import Envelope, Vibrato
from audiogen.synth.processors import FilteredNoise, Harmonic, Reverb

FORMAT = "audiogen.timbre/1"


@dataclass
class TimbreConfig:
    """Everything needed to rebuild a timbre decoder and drive it from notes.

    loudness_ref_db: median loudness of voiced frames in the training audio; a note at
        velocity 100 and full envelope is rendered at this loudness.
    """

    sample_rate: int = 32000
    frame_rate: int = 100
    hidden: int = 128
    num_layers: int = 3  # MLP blocks (input block included)
    recurrent: bool = False  # a GRU measured no better on the FluidSynth violin (0.995 vs 0.994)
    num_harmonics: int = 60
    noise_bands: int = 65
    reverb_seconds: float = 0.5
    loudness_ref_db: float = -20.0
    loudness_floor_db: float = -80.0
    envelope: Envelope = field(
        default_factory=lambda: Envelope(attack=0.05, decay=0.5, sustain=0.9, release=0.3)
    )
    vibrato: Vibrato = field(default_factory=Vibrato)  # measured from the recording by fit

    @property
    def hop(self) -> int:
        return self.sample_rate // self.frame_rate

    @classmethod
    def from_dict(cls, data: dict) -> TimbreConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SynthError(f"timbre config has unknown keys: {', '.join(sorted(unknown))}")
        data = dict(data)
        try:
            if "envelope" in data:
                data["envelope"] = Envelope(**data["envelope"])
            if "vibrato" in data:
                data["vibrato"] = Vibrato(**data["vibrato"])
        except TypeError as e:
            raise SynthError(f"timbre config: {e}") from None
        return cls(**data)


def _mlp_block(dim_in: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, dim_out), nn.LayerNorm(dim_out), nn.LeakyReLU(0.1))


class TimbreDecoder(nn.Module):
    """(f0, loudness) per frame -> audio through harmonic + filtered-noise synths + reverb.

    An MLP on the scaled inputs, optionally a GRU over time (``config.recurrent``: lets the
    spectrum depend on the recent past, e.g. attack vs sustain, as in ddsp's decoder), then
    an MLP to the synth controls. Notes are decoded as independent rows of a batch.
    """

    def __init__(self, config: TimbreConfig) -> None:
        super().__init__()
        self.config = config
        self.inp = _mlp_block(2, config.hidden)
        self.gru = (
            nn.GRU(config.hidden, config.hidden, batch_first=True) if config.recurrent else None
        )
        width = config.hidden * (2 if config.recurrent else 1)
        layers = [_mlp_block(width, config.hidden)]
        layers += [_mlp_block(config.hidden, config.hidden) for _ in range(config.num_layers - 2)]
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(config.hidden, 1 + config.num_harmonics + config.noise_bands)
        self.harmonic = Harmonic(sample_rate=config.sample_rate, hop=config.hop)
        self.noise = FilteredNoise(hop=config.hop)
        self.reverb = Reverb(ir_seconds=config.reverb_seconds, sample_rate=config.sample_rate)

    def features(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        """Inputs scaled to about [-1, 1]: pitch in octaves around middle C, loudness / 40 dB."""
        pitch = (69 + 12 * torch.log2(f0_hz.clamp(min=20.0) / 440.0) - 60) / 24
        loud = (loudness_db - self.config.loudness_ref_db) / 40
        return torch.stack([pitch, loud], dim=-1)

    def dry(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        """``[B, F]`` f0 (Hz) and loudness (dB) -> ``[B, F * hop]`` dry audio."""
        x = self.inp(self.features(f0_hz, loudness_db))  # [B, F, hidden]
        if self.gru is not None:
            x = torch.cat([x, self.gru(x)[0]], dim=-1)
        out = self.head(self.mlp(x))
        h = self.config.num_harmonics
        amplitude, dist, noise = out[..., :1], out[..., 1 : 1 + h], out[..., 1 + h :]
        harmonic = self.harmonic(amplitude, dist, f0_hz)
        return harmonic + self.noise(noise)

    def forward(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        """``[B, F]`` controls -> ``[B, F * hop]`` audio with the learned room."""
        return self.reverb(self.dry(f0_hz, loudness_db))


def save_timbre(model: TimbreDecoder, path: str | os.PathLike) -> None:
    """Write weights as safetensors with the config JSON in the metadata (atomically)."""
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(asdict(model.config))}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_timbre(path: str | os.PathLike) -> TimbreDecoder:
    """Read a timbre file written by :func:`save_timbre`; :class:`SynthError` if unusable."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise SynthError(f"{p}: no such timbre file")
    try:
        from safetensors import safe_open

        with safe_open(p, framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(p)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SynthError(f"{p}: not a timbre file ({type(e).__name__}: {e})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise SynthError(f"{p}: not an audiogen timbre file (no '{FORMAT}' metadata)")
    try:
        config = TimbreConfig.from_dict(json.loads(meta["config"]))
        model = TimbreDecoder(config)
        model.load_state_dict(tensors)
    except (ValueError, TypeError, RuntimeError) as e:
        raise SynthError(f"{p}: timbre file does not match its config ({e})") from None
    return model.eval()


def note_loudness(t: Tensor, duration: Tensor, velocity: Tensor, config: TimbreConfig) -> Tensor:
    """Loudness in dB for notes: reference level + velocity curve + ADSR, floored.

    Args:
        t: ``[F]`` frame times since onset (s); duration, velocity: ``[N]``.
    Returns:
        ``[N, F]``.
    """
    from audiogen.synth.render import adsr

    env = config.envelope
    level = adsr(t, duration[:, None], env, torch.full_like(duration[:, None], env.attack))
    db = (
        config.loudness_ref_db
        + 40 * torch.log10(velocity[:, None] / 100)
        + 20 * torch.log10(level.clamp(min=1e-6))
    )
    return db.clamp(min=config.loudness_floor_db)


def render_timbre(
    notes: Sequence, timbre: TimbreDecoder | str | os.PathLike, sample_rate: int, seed: int = 0
) -> Tensor:
    """Render notes in a learned timbre; ``[1, T]`` at ``sample_rate`` (resampled if the
    model's rate differs). Notes are decoded in buckets of similar length, then mixed."""
    model = timbre if isinstance(timbre, TimbreDecoder) else load_timbre(timbre)
    cfg = model.config
    torch.manual_seed(seed)
    tail = cfg.envelope.release
    durations = [max(n.end - n.start, 0.01) for n in notes]
    frames = [math.ceil((d + tail) * cfg.frame_rate) + 1 for d in durations]
    offsets = [round(n.start * cfg.sample_rate) for n in notes]
    total = max(o + f * cfg.hop for o, f in zip(offsets, frames, strict=True))
    out = torch.zeros(total + int(cfg.reverb_seconds * cfg.sample_rate))
    order = sorted(range(len(notes)), key=lambda i: -frames[i])
    with torch.inference_mode():
        i = 0
        while i < len(order):
            num = frames[order[i]]
            j = i + 1
            while j < len(order) and frames[order[j]] * 5 >= num * 4 and j - i < 256:
                j += 1
            idx = order[i:j]
            pitch = torch.tensor([float(notes[k].pitch) for k in idx])
            dur = torch.tensor([durations[k] for k in idx])
            vel = torch.tensor([float(max(notes[k].velocity, 1)) for k in idx])
            t = torch.arange(num, dtype=torch.float32) / cfg.frame_rate
            f0 = (440.0 * 2 ** ((pitch - 69) / 12))[:, None].expand(len(idx), num)
            vib = cfg.vibrato
            if vib.depth_cents > 0:
                ramp = ((t - vib.delay) / 0.2).clamp(0, 1)
                start_phase = torch.rand(len(idx), 1) * (2 * math.pi)
                cents = (
                    vib.depth_cents * ramp * torch.sin(2 * math.pi * vib.rate_hz * t + start_phase)
                )
                f0 = f0 * torch.exp2(cents / 1200)
            audio = model.dry(f0, note_loudness(t, dur, vel, cfg))  # [n, num * hop]
            where = torch.tensor([offsets[k] for k in idx])[:, None] + torch.arange(num * cfg.hop)
            out.index_add_(0, where.reshape(-1), audio.reshape(-1))
            i = j
        out = model.reverb(out[None])[0]
    wav = out[None]
    if sample_rate != cfg.sample_rate:
        import torchaudio.functional as AF

        wav = AF.resample(wav, cfg.sample_rate, sample_rate)
    peak = float(wav.abs().max())
    if peak > 0.99:
        wav = wav * (0.99 / peak)
    return wav.clone()
