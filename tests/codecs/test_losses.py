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
from audiogen.codecs.losses import (
    LogSTFTMagnitudeLoss,
    MelSpectrogram,
    MultiScaleMelLoss,
    STFTConvergenceLoss,
    l1_loss,
)


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


def _tone(f0: float, sr: int = 32000, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(sr * seconds)) / sr
    return sum(torch.sin(2 * torch.pi * k * f0 * t) / k for k in range(1, 6))[None, None]


def test_stft_convergence_sees_a_wrong_semitone():
    sc = STFTConvergenceLoss(sample_rate=32000)
    a, semitone, quieter = _tone(440.0), _tone(466.16), 0.7 * _tone(440.0)
    assert float(sc(a, a)) == 0
    assert float(sc(torch.zeros_like(a), a)) == pytest.approx(1.0)
    # A semitone moves every partial to other bins: the spectra barely overlap (~sqrt 2),
    # against 0.3 for the right note 3 dB quieter.
    assert float(sc(semitone, a)) > 1.2
    assert float(sc(quieter, a)) == pytest.approx(0.3, abs=1e-4)
    assert float(sc(semitone, a)) > 4 * float(sc(quieter, a))


def test_stft_convergence_is_finite_with_a_silent_window():
    sc = STFTConvergenceLoss(sample_rate=32000)
    target = torch.cat([_tone(440.0), torch.zeros_like(_tone(440.0))])
    pred = (target + 0.01 * torch.randn_like(target)).requires_grad_(True)
    loss = sc(pred, target)
    assert 0 < float(loss) < 0.5
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_log_stft_sees_a_noise_floor_the_convergence_loss_hardly_does():
    log_loss, sc = LogSTFTMagnitudeLoss(), STFTConvergenceLoss(sample_rate=32000)
    a = 0.3 * _tone(440.0)
    # White noise 20 dB under the tone fills the valleys between its partials: 1% of the
    # energy (what spectral convergence weighs), but most bins rise by tens of dB.
    noisy = a + 0.1 * a.pow(2).mean().sqrt() * torch.randn_like(a)
    assert float(log_loss(a, a)) == 0
    assert float(sc(noisy, a)) < 0.1
    assert float(log_loss(noisy, a)) > 0.8  # decades: the valleys were at the -80 dB floor
    # The tone 3 dB quieter moves its partials' bins by 0.15 decades (the rest sit at the floor).
    assert float(log_loss(0.7 * a, a)) < 0.2
    silent = torch.zeros_like(a).requires_grad_(True)
    loss = log_loss(silent + 1e-9, a)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(silent.grad).all()


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
