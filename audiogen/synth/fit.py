"""Fit a :class:`~audiogen.synth.timbre.TimbreDecoder` to a monophonic recording."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from audiogen.synth.errors import SynthError
from audiogen.synth.features import estimate_attack, estimate_vibrato, extract_controls
from audiogen.synth.losses import multiscale_spectral_loss
from audiogen.synth.presets import Envelope, Vibrato
from audiogen.synth.timbre import TimbreConfig, TimbreDecoder, save_timbre


@dataclass
class FitResult:
    """model: the fitted decoder (eval mode); losses: spectral loss per step;
    voiced_fraction: share of frames pyin found pitched; seconds: wall time of the fit."""

    model: TimbreDecoder
    losses: list[float]
    voiced_fraction: float
    seconds: float


def fit_timbre(
    audio: Tensor,
    config: TimbreConfig | None = None,
    steps: int = 300,
    batch_size: int = 8,
    segment_seconds: float = 1.0,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> FitResult:
    """Train a timbre decoder on mono ``audio`` ``[T]`` at ``config.sample_rate``.

    Controls come from the recording itself (pyin f0, A-weighted loudness), so the decoder
    learns the map (f0, loudness) -> spectrum; random ``segment_seconds`` crops are batched
    and scored with :func:`multiscale_spectral_loss`.
    """
    config = config or TimbreConfig()
    start_time = time.perf_counter()
    torch.manual_seed(seed)
    hop = config.hop
    if audio.shape[-1] < (segment_seconds + 0.05) * config.sample_rate:  # before slow pyin
        raise SynthError(
            f"recording too short: {audio.shape[-1] / config.sample_rate:.2f} s; "
            f"need more than {segment_seconds:.1f} s"
        )
    controls = extract_controls(audio, config.sample_rate, hop)
    voiced = controls.voiced
    # Share of pitched frames among the audible ones (within 50 dB of the loudest): pyin
    # calls ~30 % of white-noise frames voiced, a played instrument scores > 80 %.
    audible = controls.loudness_db > controls.loudness_db.max() - 50
    voiced_fraction = float(voiced[audible].float().mean())
    if voiced.sum() < config.frame_rate // 2 or voiced_fraction < 0.5:
        raise SynthError(
            f"no clear pitch: pyin found {voiced_fraction:.0%} of the audible frames pitched; "
            "fit needs a monophonic recording of a pitched instrument"
        )
    depth, rate = estimate_vibrato(controls, config.frame_rate)
    config = dataclasses.replace(
        config,
        loudness_ref_db=float(controls.loudness_db[voiced].median()),
        vibrato=Vibrato(rate_hz=round(rate, 2), depth_cents=round(depth, 1), delay=0.15),
        # A linear amplitude ramp reaches -3 dB at 70 % of its length.
        envelope=dataclasses.replace(
            config.envelope or Envelope(),
            attack=round(estimate_attack(audio, controls, config.sample_rate, hop) / 0.7, 3),
        ),
    )
    seg = int(segment_seconds * config.frame_rate)
    usable = audio.shape[-1] // hop
    model = TimbreDecoder(config)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    # Crops start at voiced frames: silence teaches the decoder nothing about timbre.
    starts_ok = torch.nonzero(voiced[: usable - seg + 1]).flatten()
    if len(starts_ok) == 0:
        starts_ok = torch.arange(usable - seg + 1)
    losses: list[float] = []
    bar = tqdm(range(steps), desc="fitting timbre", disable=not progress, unit="step")
    for _ in bar:
        pick = starts_ok[torch.randint(len(starts_ok), (batch_size,))]
        frames = pick[:, None] + torch.arange(seg)
        f0 = controls.f0_hz[frames]
        loud = controls.loudness_db[frames]
        target = audio[(pick[:, None] * hop + torch.arange(seg * hop)).clamp(max=len(audio) - 1)]
        loss = multiscale_spectral_loss(model(f0, loud), target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return FitResult(
        model=model.eval(),
        losses=losses,
        voiced_fraction=voiced_fraction,
        seconds=time.perf_counter() - start_time,
    )


def fit_timbre_file(
    path: str | os.PathLike,
    out: str | os.PathLike,
    config: TimbreConfig | None = None,
    **kwargs,
) -> FitResult:
    """Load ``path`` (any format :func:`audiogen.audio.load` reads) as mono at the model rate,
    fit, and save the timbre to ``out`` (safetensors). ``kwargs`` go to :func:`fit_timbre`."""
    from audiogen import audio as audio_io

    config = config or TimbreConfig()
    wav, _ = audio_io.load(path, sample_rate=config.sample_rate, channels=1)
    wav = wav[0]
    if float(wav.abs().max()) < 1e-4:
        raise SynthError(f"{path}: recording is silent")
    result = fit_timbre(wav, config, **kwargs)
    save_timbre(result.model, out)
    return result
