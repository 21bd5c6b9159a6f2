"""Learned timbre: fitting lowers the spectral loss, files round-trip, notes render in it."""

from __future__ import annotations

import pytest
import torch

from audiogen.cli import main
from audiogen.midi import Note
from audiogen.synth import SynthError, render_notes
from audiogen.synth.fit import fit_timbre
from audiogen.synth.losses import multiscale_spectral_loss
from audiogen.synth.timbre import TimbreConfig, TimbreDecoder, load_timbre, save_timbre

SR = 16000


@pytest.fixture(scope="module")
def fitted():
    notes = [Note(p, 0.6 * i, 0.6 * i + 0.55, 100, 40) for i, p in enumerate([57, 60, 64, 62, 67])]
    audio = render_notes(notes, instrument="violin", sample_rate=SR, reverb=False)[0]
    config = TimbreConfig(
        sample_rate=SR,
        hidden=32,
        num_layers=2,
        num_harmonics=30,
        noise_bands=33,
        reverb_seconds=0.1,
    )
    result = fit_timbre(
        audio, config, steps=40, batch_size=4, segment_seconds=0.5, lr=1e-2, progress=False
    )
    return result


def test_fit_lowers_spectral_loss(fitted):
    first, last = sum(fitted.losses[:5]) / 5, sum(fitted.losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    assert fitted.voiced_fraction > 0.5


def test_timbre_file_round_trip(fitted, tmp_path):
    path = tmp_path / "violin.safetensors"
    save_timbre(fitted.model, path)
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    loaded = load_timbre(path)
    assert loaded.config == fitted.model.config
    f0 = torch.full((1, 10), 220.0)
    loud = torch.full((1, 10), fitted.model.config.loudness_ref_db)
    torch.manual_seed(0)
    a = fitted.model(f0, loud)
    torch.manual_seed(0)
    b = loaded(f0, loud)
    assert torch.allclose(a, b)


def test_render_notes_in_timbre(fitted, tmp_path):
    notes = [Note(62, 0.0, 0.4, 90, 0), Note(66, 0.3, 0.8, 110, 0)]
    wav = render_notes(notes, timbre=fitted.model, sample_rate=22050)
    assert wav.shape[0] == 1 and torch.isfinite(wav).all() and wav.abs().max() > 1e-3
    assert wav.shape[1] >= int(0.8 * 22050)


def test_render_cli_with_timbre(fitted, tmp_path, melody_mid):
    path = tmp_path / "violin.safetensors"
    save_timbre(fitted.model, path)
    out = tmp_path / "o.wav"
    assert main(["render", str(melody_mid), "-o", str(out), "--timbre", str(path)]) == 0
    assert out.stat().st_size > 1000


def test_config_rejects_unknown_keys():
    with pytest.raises(SynthError, match="unknown"):
        TimbreConfig.from_dict({"sample_rate": 16000, "bogus": 1})


@pytest.mark.parametrize("recurrent", [False, True])
def test_decoder_gradients_reach_parameters(recurrent):
    model = TimbreDecoder(
        TimbreConfig(
            sample_rate=SR,
            hidden=16,
            num_layers=1,
            num_harmonics=10,
            noise_bands=17,
            reverb_seconds=0.05,
            recurrent=recurrent,
        )
    )
    f0 = torch.full((2, 8), 300.0)
    loud = torch.full((2, 8), -20.0)
    target = torch.randn(2, 8 * model.config.hop) * 0.1
    multiscale_spectral_loss(model(f0, loud), target, fft_sizes=(256, 64)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
