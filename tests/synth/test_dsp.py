"""DSP primitives against references: numpy convolution, an explicit sum of sinusoids."""

from __future__ import annotations

import math

import numpy as np
import torch

from audiogen.synth import dsp
from audiogen.synth.processors import Reverb


def test_wavetable_matches_additive_oscillator():
    sr, hop, frames, harmonics = 16000, 160, 30, 20
    gen = torch.Generator().manual_seed(0)
    amps = torch.rand(2, frames, harmonics, generator=gen) / torch.arange(1, harmonics + 1)
    f0_frames = torch.linspace(200.0, 260.0, frames).expand(2, frames)[..., None]
    amps = dsp.remove_above_nyquist(amps, f0_frames * 1.01, sr)
    n = frames * hop
    f0 = dsp.frames_to_samples(f0_frames, hop, n)[..., 0]
    ref = dsp.additive_oscillator(f0, dsp.frames_to_samples(amps, hop, n), sr)
    fast = dsp.wavetable_oscillator(f0, amps, hop, sr, table_size=1024)
    err = (fast - ref).abs().max() / ref.abs().max()
    assert err < 2e-3, err


def test_additive_oscillator_drops_harmonics_at_or_above_nyquist():
    sr, n = 16000, 16000
    f0 = torch.full((1, n), 3000.0)  # harmonics 1, 2 below 8 kHz; 3+ above
    audio = dsp.additive_oscillator(f0, torch.ones(1, n, 10), sr)[0].numpy()
    spec = np.abs(np.fft.rfft(audio * np.hanning(n)))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    keep = (np.abs(freqs - 3000) < 20) | (np.abs(freqs - 6000) < 20)
    assert spec[~keep].max() < 1e-4 * spec.max()


def test_phase_accumulation_stays_precise_over_long_signals():
    sr, f0 = 32000, 1234.5
    n = 60 * sr
    phase = dsp.accumulate_phase(torch.full((n,), f0), sr)
    exact = np.mod(np.arange(n, dtype=np.float64) * f0 / sr, 1.0)
    diff = np.abs(phase.numpy() - exact)
    diff = np.minimum(diff, 1 - diff)  # phase wraps
    assert diff.max() < 1e-5


def test_fft_convolutions_match_numpy():
    gen = torch.Generator().manual_seed(1)
    x, h = torch.randn(5000, generator=gen), torch.randn(300, generator=gen)
    ref = np.convolve(x.numpy(), h.numpy())[:5000]
    assert np.allclose(dsp.fft_convolve(x, h).numpy(), ref, atol=1e-3)
    n_fft = 1024
    spec = torch.fft.rfft(h, n_fft)
    out = dsp.overlap_add_convolve(x, spec, n_fft, len(h))
    assert np.allclose(out.numpy(), ref, atol=1e-3)


def test_filtered_noise_follows_band_magnitudes():
    sr, hop, frames, bands = 16000, 256, 200, 65
    mags = torch.zeros(1, frames, bands)
    mags[..., :17] = 1.0  # pass 0 .. 2 kHz
    audio = dsp.filtered_noise(mags, hop)[0].numpy()
    assert audio.shape == (frames * hop,)
    spec = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / sr)
    low, high = spec[freqs < 1500].mean(), spec[freqs > 4000].mean()
    assert 10 * math.log10(low / high) > 30


def test_gradients_flow_to_controls():
    sr, hop, frames = 16000, 64, 20
    f0 = torch.full((1, frames, 1), 220.0, requires_grad=True)
    amps = torch.rand(1, frames, 8, requires_grad=True)
    noise_mags = torch.rand(1, frames, 33, requires_grad=True)
    n = frames * hop
    f0_audio = dsp.frames_to_samples(f0, hop, n)[..., 0]
    harm = dsp.wavetable_oscillator(f0_audio, amps, hop, sr, table_size=256)
    additive = dsp.additive_oscillator(f0_audio, dsp.frames_to_samples(amps, hop, n), sr)
    noise = dsp.filtered_noise(noise_mags, hop)
    reverb = Reverb(ir_seconds=0.05, sample_rate=sr)
    out = reverb(harm + additive + noise)
    out.square().mean().backward()
    for name, t in [("f0", f0), ("amps", amps), ("noise", noise_mags), ("ir", reverb.ir)]:
        assert t.grad is not None and torch.isfinite(t.grad).all(), name
        assert t.grad.abs().sum() > 0, name


def test_render_reverb_matches_numpy_convolution():
    from audiogen.synth.reverb import add_reverb, room_ir

    x = torch.randn(50000, generator=torch.Generator().manual_seed(2))
    ir = room_ir(0.5, 0.3, 16000).numpy()
    ref = x.numpy() + np.convolve(x.numpy(), ir)[:50000]
    assert np.allclose(add_reverb(x, 0.5, 0.3, 16000).numpy(), ref, atol=1e-4)
