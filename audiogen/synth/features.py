"""Control features from audio for fitting a timbre: f0 (librosa.pyin) and loudness (A-weighted).

Frame ``f`` of every feature sits at sample ``f * hop`` of the audio, as the synth expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import torch
from torch import Tensor

PYIN_RATE = 16000  # pyin cost grows with the rate; 16 kHz resolves f0 up to ~2 kHz fine


@dataclass
class AudioControls:
    """Per-frame controls of a monophonic recording.

    f0_hz: ``[F]`` fundamental in Hz; unvoiced frames hold the nearest voiced value.
    loudness_db: ``[F]`` A-weighted loudness in dB (0 dB = full-scale sine).
    voiced: ``[F]`` bool, pyin's voicing decision.
    """

    f0_hz: Tensor
    loudness_db: Tensor
    voiced: Tensor


def a_weighted_loudness(audio: Tensor, sample_rate: int, hop: int, n_fft: int = 2048) -> Tensor:
    """A-weighted loudness in dB per frame, ``[T] -> [T // hop + 1]``.

    Power spectrum weighted by the A curve, averaged over frequency, in dB relative to a
    full-scale sine, floored at -100 dB.
    """
    window = torch.hann_window(n_fft)
    spec = torch.stft(audio, n_fft, hop_length=hop, window=window, return_complex=True)
    power = spec.abs().square()  # [n_fft // 2 + 1, F]
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
    with np.errstate(divide="ignore"):  # A-weighting of 0 Hz is -inf dB, i.e. weight 0
        weight = torch.from_numpy(librosa.db_to_power(librosa.A_weighting(freqs))).float()
    # A full-scale sine has total power (n_fft * sum(window^2) / 4 ... ) spread over ~2 bins;
    # normalise by that so 0 dB means a full-scale 1 kHz sine.
    ref = (window.sum() / 2) ** 2
    loud = (power * weight[:, None]).sum(0) / ref
    return 10 * torch.log10(loud.clamp(min=1e-10))


def extract_controls(audio: Tensor, sample_rate: int, hop: int) -> AudioControls:
    """f0 (pyin, 40 Hz - 2 kHz) and loudness of mono ``audio`` ``[T]`` at ``sample_rate / hop``
    frames per second."""
    num_frames = audio.shape[-1] // hop + 1
    low = librosa.resample(audio.numpy(), orig_sr=sample_rate, target_sr=PYIN_RATE)
    pyin_hop = max(1, round(hop * PYIN_RATE / sample_rate))
    f0, voiced, _ = librosa.pyin(
        low, fmin=40.0, fmax=2000.0, sr=PYIN_RATE, frame_length=2048, hop_length=pyin_hop
    )
    # Map pyin frames (at pyin_hop) onto synth frames by time.
    t_synth = np.arange(num_frames) * hop / sample_rate
    t_pyin = np.arange(len(f0)) * pyin_hop / PYIN_RATE
    idx = np.clip(np.searchsorted(t_pyin, t_synth), 0, len(f0) - 1)
    f0, voiced = f0[idx], voiced[idx]
    if voiced.any():
        good = np.flatnonzero(voiced & np.isfinite(f0))
        f0 = np.interp(np.arange(num_frames), good, f0[good])  # hold through unvoiced gaps
    else:
        f0 = np.full(num_frames, np.nan)
    loud = a_weighted_loudness(audio, sample_rate, hop)[:num_frames]
    return AudioControls(
        f0_hz=torch.from_numpy(f0).float(),
        loudness_db=loud,
        voiced=torch.from_numpy(voiced.astype(bool)),
    )


def estimate_vibrato(controls: AudioControls, frame_rate: float) -> tuple[float, float]:
    """Typical vibrato of a recording as ``(depth_cents, rate_hz)``.

    Pitch in cents minus its 0.25 s running median (the note) leaves the vibrato; depth is
    the peak deviation of a sinusoid with that RMS, rate the spectral peak in 3-9 Hz.
    Deviations over 60 cents (note changes, pyin octave slips) are left out.
    """
    from scipy.ndimage import median_filter

    voiced = controls.voiced.numpy()
    if voiced.sum() < frame_rate:  # under a second of pitched audio: no estimate
        return 0.0, 5.5
    cents = 1200 * np.log2(controls.f0_hz.numpy() / 440.0)
    trend = median_filter(cents, size=max(3, int(0.25 * frame_rate)) | 1, mode="nearest")
    dev = np.where(voiced, cents - trend, 0.0)
    dev[np.abs(dev) > 60] = 0.0
    used = voiced & (dev != 0)
    if used.sum() < frame_rate // 2:
        return 0.0, 5.5
    depth = float(np.sqrt(2) * dev[used].std())
    spectrum = np.abs(np.fft.rfft(dev))
    freqs = np.fft.rfftfreq(len(dev), 1 / frame_rate)
    band = (freqs >= 3) & (freqs <= 9)
    rate = float(freqs[band][np.argmax(spectrum[band])]) if band.any() else 5.5
    return depth, rate


def estimate_attack(
    audio: Tensor, controls: AudioControls, sample_rate: int, hop: int, default: float = 0.05
) -> float:
    """Typical attack time (s) of a recording: from each detected onset, the time until the
    loudness is within 3 dB of the note's peak (median over notes at least 0.4 s long)."""
    frame_rate = sample_rate / hop
    onsets = librosa.onset.onset_detect(
        y=audio.numpy(), sr=sample_rate, hop_length=hop, backtrack=True, units="frames"
    )
    loud = controls.loudness_db.numpy()
    span = int(0.4 * frame_rate)
    times = []
    for start, nxt in zip(onsets, [*onsets[1:], len(loud)], strict=True):
        if nxt - start < span or not controls.voiced[start : start + span].any():
            continue
        curve = loud[start : start + span]
        times.append(int(np.argmax(curve > curve.max() - 3.0)) / frame_rate)
    return float(np.clip(np.median(times), 0.005, 0.5)) if times else default
