"""DDSP processors: modules that split control scaling from signal generation.

As in ddsp, each processor has ``get_controls`` (raw network outputs -> physical controls:
positive amplitudes, normalised harmonic distributions, Nyquist-safe) and ``get_signal``
(controls -> audio). ``forward`` chains them. All shapes: controls ``[B, F, ...]`` at
``sample_rate / hop`` Hz, audio ``[B, T]`` with ``T = F * hop``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from audiogen.synth import dsp


@dataclass
class HarmonicControls:
    """Scaled controls of the harmonic synth.

    amplitudes: ``[B, F, H]`` linear amplitude per harmonic (total amplitude times the
        normalised distribution; harmonics at or above Nyquist are zero).
    f0_hz: ``[B, F]`` fundamental in Hz.
    """

    amplitudes: Tensor
    f0_hz: Tensor


class Harmonic(nn.Module):
    """Harmonic oscillator bank driven by total amplitude, harmonic distribution and f0."""

    def __init__(self, *, sample_rate: int, hop: int, table_size: int = 1024) -> None:
        super().__init__()
        self.sample_rate, self.hop, self.table_size = sample_rate, hop, table_size

    def get_controls(self, amplitude: Tensor, distribution: Tensor, f0_hz: Tensor):
        """Raw logits -> :class:`HarmonicControls`.

        Args:
            amplitude: ``[B, F, 1]`` raw total-amplitude output (exp-sigmoid scaled).
            distribution: ``[B, F, H]`` raw harmonic logits (exp-sigmoid, then normalised
                to sum 1 over the harmonics that are below Nyquist).
            f0_hz: ``[B, F]`` fundamental in Hz.
        """
        amplitude = dsp.exp_sigmoid(amplitude)
        dist = dsp.remove_above_nyquist(dsp.exp_sigmoid(distribution), f0_hz, self.sample_rate)
        dist = dist / dist.sum(-1, keepdim=True).clamp(min=1e-7)
        return HarmonicControls(amplitudes=amplitude * dist, f0_hz=f0_hz)

    def get_signal(self, controls: HarmonicControls) -> Tensor:
        """Controls -> ``[B, F * hop]`` audio (f0 upsampled linearly to audio rate)."""
        num_samples = controls.f0_hz.shape[1] * self.hop
        f0 = dsp.frames_to_samples(controls.f0_hz[..., None], self.hop, num_samples)[..., 0]
        return dsp.wavetable_oscillator(
            f0, controls.amplitudes, self.hop, self.sample_rate, self.table_size
        )

    def forward(self, amplitude: Tensor, distribution: Tensor, f0_hz: Tensor) -> Tensor:
        return self.get_signal(self.get_controls(amplitude, distribution, f0_hz))


class FilteredNoise(nn.Module):
    """White noise through a per-frame FIR whose response is given at M bands."""

    def __init__(self, *, hop: int, initial_bias: float = -5.0) -> None:
        super().__init__()
        self.hop = hop
        self.initial_bias = initial_bias  # starts the noise quiet, as ddsp does

    def get_controls(self, magnitudes: Tensor) -> Tensor:
        """``[B, F, M]`` raw outputs -> positive band magnitudes."""
        return dsp.exp_sigmoid(magnitudes + self.initial_bias)

    def get_signal(self, magnitudes: Tensor, noise: Tensor | None = None) -> Tensor:
        """``[B, F, M]`` magnitudes -> ``[B, F * hop]`` audio."""
        return dsp.filtered_noise(magnitudes, self.hop, noise=noise)

    def forward(self, magnitudes: Tensor) -> Tensor:
        return self.get_signal(self.get_controls(magnitudes))


class Reverb(nn.Module):
    """Convolution reverb with a learnable impulse response.

    The IR starts as exponentially decaying noise (RT60 ``decay_seconds``) at a low level;
    its first sample is held at zero so the dry path stays separate and identifiable.
    """

    def __init__(
        self,
        *,
        ir_seconds: float = 1.0,
        sample_rate: int,
        decay_seconds: float = 0.6,
        initial_wet: float = 0.05,
    ) -> None:
        super().__init__()
        n = max(int(ir_seconds * sample_rate), 2)
        t = torch.arange(n, dtype=torch.float32) / sample_rate
        gen = torch.Generator().manual_seed(0)
        ir = torch.randn(n, generator=gen) * torch.exp(-6.91 * t / decay_seconds)
        self.ir = nn.Parameter(ir * (initial_wet / ir.square().sum().sqrt()))

    def forward(self, audio: Tensor) -> Tensor:
        """``[B, T]`` dry -> ``[B, T]`` dry + wet."""
        ir = torch.cat([self.ir.new_zeros(1), self.ir[1:]])
        return audio + dsp.fft_convolve(audio, ir)


def db_to_amplitude(db: Tensor | float) -> Tensor:
    """dB -> linear amplitude."""
    return torch.pow(10.0, torch.as_tensor(db) / 20.0)


def amplitude_to_db(x: Tensor, floor_db: float = -120.0) -> Tensor:
    """Linear amplitude -> dB, floored."""
    return 20.0 * torch.log10(x.clamp(min=10 ** (floor_db / 20)))


__all__ = [
    "FilteredNoise",
    "Harmonic",
    "HarmonicControls",
    "Reverb",
    "amplitude_to_db",
    "db_to_amplitude",
]
