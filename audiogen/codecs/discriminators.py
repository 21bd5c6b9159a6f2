"""Multi-scale STFT discriminator (EnCodec) and the adversarial / feature-matching losses.

Each scale looks at the complex STFT (real and imaginary parts as channels) of the
waveform at one window size, through 2-D convs dilated along time and strided along
frequency. Besides the logits it returns every intermediate activation, for feature
matching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


@dataclass
class DiscriminatorOutput:
    """Per-scale results of :class:`MultiScaleSTFTDiscriminator`."""

    logits: list[torch.Tensor]  # one [B, 1, frames, bins'] map per scale
    features: list[list[torch.Tensor]]  # per scale, each conv's activation [B, F, frames, bins']


class STFTDiscriminator(nn.Module):
    """One scale: ``wav [B, C, T] -> (logits [B, 1, frames, bins'], features)``."""

    def __init__(
        self,
        *,
        channels: int = 1,
        filters: int = 32,
        n_fft: int = 1024,
        hop_length: int | None = None,
        dilations: Sequence[int] = (1, 2, 4),
        max_filters: int = 1024,
        filters_scale: int = 1,
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length or n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # Layout [B, 2C, frames, freq]: kernels are (time, frequency).
        convs = [weight_norm(nn.Conv2d(2 * channels, filters, (3, 9), padding=(1, 4)))]
        width = filters
        for d in dilations:
            out = min(filters_scale * width, max_filters)
            convs.append(
                weight_norm(
                    nn.Conv2d(width, out, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4))
                )
            )
            width = out
        convs.append(weight_norm(nn.Conv2d(width, width, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(convs)
        self.conv_post = weight_norm(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = wav.shape
        spec = torch.stft(
            wav.reshape(b * c, t),
            self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            return_complex=True,
        )  # [B*C, bins, frames]
        spec = torch.view_as_real(spec).view(b, c, *spec.shape[-2:], 2)
        x = spec.permute(0, 1, 4, 3, 2).reshape(b, 2 * c, spec.shape[3], spec.shape[2])
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            features.append(x)
        return self.conv_post(x), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """Several :class:`STFTDiscriminator` at different window sizes (EnCodec: 1024/2048/512)."""

    def __init__(
        self,
        *,
        channels: int = 1,
        filters: int = 32,
        n_ffts: Sequence[int] = (1024, 2048, 512),
        dilations: Sequence[int] = (1, 2, 4),
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            [
                STFTDiscriminator(channels=channels, filters=filters, n_fft=n, dilations=dilations)
                for n in n_ffts
            ]
        )

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        """``wav [B, C, T]`` -> logits and features of every scale."""
        logits, features = [], []
        for disc in self.discriminators:
            logit, feats = disc(wav)
            logits.append(logit)
            features.append(feats)
        return DiscriminatorOutput(logits=logits, features=features)


def generator_adversarial_loss(fake: DiscriminatorOutput) -> torch.Tensor:
    """Hinge loss for the generator: mean over scales of ``relu(1 - D(fake))``."""
    return torch.stack([F.relu(1 - lg).mean() for lg in fake.logits]).mean()


def discriminator_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """Hinge loss for the discriminator (call it with ``fake`` computed on detached audio)."""
    losses = [
        F.relu(1 - r).mean() + F.relu(1 + f).mean()
        for r, f in zip(real.logits, fake.logits, strict=True)
    ]
    return torch.stack(losses).mean()


def feature_matching_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """Mean over all layers of ``|f_real - f_fake|_1 / mean|f_real|`` (EnCodec's relative L1).

    Real features are treated as targets (no gradient), so only the generator learns here.
    """
    terms = []
    for rs, fs in zip(real.features, fake.features, strict=True):
        for r, f in zip(rs, fs, strict=True):
            r = r.detach()
            terms.append(F.l1_loss(f, r) / (r.abs().mean() + 1e-8))
    return torch.stack(terms).mean()
