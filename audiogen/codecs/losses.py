"""Reconstruction losses for codec training: time-domain L1 and multi-scale mel.

The mel loss compares mel spectrograms at several STFT sizes (EnCodec / DAC style) so
that both transients (short windows) and pitch detail (long windows) are penalised. The
mel filterbank is librosa's (Slaney), kept as a buffer, so the loss has no torchaudio
dependency and matches ``librosa.feature.melspectrogram(power=1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between waveforms ``[B, C, T]``."""
    return F.l1_loss(pred, target)


class MelSpectrogram(nn.Module):
    """Magnitude mel spectrogram: ``[B, C, T] -> [B, C, n_mels, frames]``.

    Centre-padded (reflect) Hann-windowed STFT, as librosa does by default.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        n_fft: int,
        hop_length: int | None = None,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        power: float = 1.0,
    ) -> None:
        super().__init__()
        import librosa

        self.n_fft = n_fft
        self.hop_length = hop_length or n_fft // 4
        self.power = power
        fb = librosa.filters.mel(
            sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max
        )  # [n_mels, n_fft // 2 + 1]
        self.register_buffer("fbank", torch.from_numpy(fb).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        b, c, t = wav.shape
        spec = torch.stft(
            wav.reshape(b * c, t),
            self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )  # [B*C, n_fft//2+1, frames]
        mag = spec.abs().pow(self.power)
        mel = torch.matmul(self.fbank, mag)  # [B*C, n_mels, frames]
        return mel.view(b, c, *mel.shape[-2:])


class MultiScaleMelLoss(nn.Module):
    """Sum over STFT sizes of L1 between log-mels (plus optionally between linear mels).

    ``n_ffts`` default to EnCodec's ``2**5 .. 2**11``; each uses hop ``n_fft // 4`` and
    ``min(n_mels, n_fft // 4)`` bands so short windows do not get empty filters.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        n_ffts: Sequence[int] = (32, 64, 128, 256, 512, 1024, 2048),
        n_mels: int = 64,
        log_weight: float = 1.0,
        linear_weight: float = 1.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.mels = nn.ModuleList(
            [
                MelSpectrogram(sample_rate=sample_rate, n_fft=n, n_mels=min(n_mels, n // 4))
                for n in n_ffts
            ]
        )
        self.log_weight = log_weight
        self.linear_weight = linear_weight
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss ``[]`` between waveforms ``pred, target [B, C, T]``."""
        total = pred.new_zeros(())
        for mel in self.mels:
            p, t = mel(pred), mel(target)
            if self.linear_weight:
                total = total + self.linear_weight * F.l1_loss(p, t)
            if self.log_weight:
                lp = torch.log10(p.clamp(min=self.eps))
                lt = torch.log10(t.clamp(min=self.eps))
                total = total + self.log_weight * F.l1_loss(lp, lt)
        return total / len(self.mels)
