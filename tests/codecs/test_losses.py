"""Codec training losses and discriminator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiogen.codecs.discriminators import (
    MultiScaleSTFTDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from audiogen.codecs.losses import MelSpectrogram, MultiScaleMelLoss, l1_loss


def test_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    sr = 16000
    y = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    ref = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=512, hop_length=128, n_mels=40, power=1.0, pad_mode="reflect"
    )
    mel = MelSpectrogram(sample_rate=sr, n_fft=512, hop_length=128, n_mels=40)
    out = mel(torch.from_numpy(y)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_multiscale_mel_loss_properties():
    loss = MultiScaleMelLoss(sample_rate=16000, n_ffts=(64, 256, 1024))
    x = torch.randn(2, 1, 4000)
    assert float(loss(x, x)) == 0
    small, big = loss(x + 0.01 * torch.randn_like(x), x), loss(x + 0.3 * torch.randn_like(x), x)
    assert 0 < float(small) < float(big)
    pred = x.clone().requires_grad_(True)
    (loss(pred * 0.5, x) + l1_loss(pred, x)).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_msstft_discriminator_shapes_and_losses():
    disc = MultiScaleSTFTDiscriminator(channels=2, filters=4, n_ffts=(128, 256))
    real = torch.randn(2, 2, 2000)
    fake = (0.5 * torch.randn(2, 2, 2000)).requires_grad_(True)
    out_real = disc(real)
    assert len(out_real.logits) == 2 and len(out_real.features[0]) == 5
    # 128-point STFT, hop 32: 63 frames; 65 bins halved three times -> 9.
    assert out_real.logits[0].shape == (2, 1, 63, 9)
    out_fake = disc(fake)
    assert float(feature_matching_loss(out_real, out_real)) == 0
    g = generator_adversarial_loss(out_fake) + feature_matching_loss(out_real, out_fake)
    g.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    d = discriminator_loss(disc(real), disc(fake.detach()))
    assert d.ndim == 0 and float(d) > 0
    # A discriminator step on the hinge loss lowers it.
    opt = torch.optim.SGD(disc.parameters(), lr=0.05)
    before = float(d)
    for _ in range(3):
        opt.zero_grad()
        d = discriminator_loss(disc(real), disc(fake.detach()))
        d.backward()
        opt.step()
    assert float(discriminator_loss(disc(real), disc(fake.detach()))) < before
