"""Multi-scale spectral loss (ddsp's): L1 on linear and log STFT magnitudes at several sizes."""

from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def multiscale_spectral_loss(
    pred: Tensor,
    target: Tensor,
    fft_sizes: tuple[int, ...] = DEFAULT_FFT_SIZES,
    log_weight: float = 1.0,
    eps: float = 1e-5,
) -> Tensor:
    """Mean over scales of ``mean|S_p - S_t| + log_weight * mean|log S_p - log S_t|``.

    Large FFTs resolve harmonics, small ones resolve attacks, and the log term weighs quiet
    partials and noise, which the linear term ignores.

    Args:
        pred, target: ``[B, T]`` audio at the same rate and length.
    Returns:
        scalar loss.
    """
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: {tuple(pred.shape)} vs {tuple(target.shape)}")
    total = pred.new_zeros(())
    for n_fft in fft_sizes:
        window = torch.hann_window(n_fft, device=pred.device)
        spec = [
            torch.stft(x, n_fft, hop_length=n_fft // 4, window=window, return_complex=True).abs()
            for x in (pred, target)
        ]
        log_diff = torch.log(spec[0] + eps) - torch.log(spec[1] + eps)
        total = total + (spec[0] - spec[1]).abs().mean() + log_weight * log_diff.abs().mean()
    return total / len(fft_sizes)
