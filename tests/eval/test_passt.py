"""PaSST port against hear21passt's module (same random weights), and the KL command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audiogen.eval.embeddings import WeightsError
from audiogen.eval.passt import PasstClassifier


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    """hear21passt's mel front end + a small distilled PaSST (2 blocks of 128), eval mode,
    and its state dict saved as a .pt the way the published checkpoints are."""
    pytest.importorskip("hear21passt")
    from hear21passt.models.passt import PaSST
    from hear21passt.models.preprocess import AugmentMelSTFT
    from hear21passt.wrapper import PasstBasicWrapper

    torch.manual_seed(0)
    # get_basic_model's front end (it prints a note about fmax=None)
    mel = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024,
                         freqm=48, timem=192, htk=False, fmin=0.0, fmax=None, norm=1,
                         fmin_aug_range=10, fmax_aug_range=2000)  # fmt: skip
    net = PaSST(img_size=(128, 998), patch_size=16, stride=10, in_chans=1, num_classes=10,
                embed_dim=128, depth=2, num_heads=2, distilled=True)  # fmt: skip
    g = torch.Generator().manual_seed(1)
    for m in net.modules():  # non-trivial norms
        if isinstance(m, torch.nn.LayerNorm):
            m.weight.data = 1 + 0.2 * torch.randn(m.weight.shape, generator=g)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=g)
    wrapper = PasstBasicWrapper(mel=mel, net=net, mode="logits").eval()
    path = tmp_path_factory.mktemp("passt") / "passt-tiny.pt"
    torch.save(net.state_dict(), path)
    return wrapper, path


def _clip(seconds: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * 32000)) / 32000
    return (0.3 * torch.sin(2 * torch.pi * 330 * t) + 0.05 * torch.randn(t.shape, generator=g))[
        None
    ]


def test_logits_match_hear21passt(peer):
    wrapper, path = peer
    ours = PasstClassifier.from_file(path)
    assert ours.window == 320000  # 10 s at 32 kHz
    for seconds in (10.0, 3.5):
        wav = _clip(seconds, seed=int(seconds))
        with torch.no_grad():
            want = wrapper(wav)[0]
        got = ours(wav, 32000)
        assert got.shape == (10,)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_long_clips_average_window_logits(peer):
    _, path = peer
    ours = PasstClassifier.from_file(path)
    wav = torch.cat([_clip(10.0, 0), _clip(4.0, 1)], dim=1)
    want = (ours(wav[:, :320000], 32000) + ours(wav[:, 320000:], 32000)) / 2
    torch.testing.assert_close(ours(wav, 32000), want)
    # other rates and stereo are converted first
    assert ours(torch.randn(2, 44100) * 0.1, 44100).shape == (10,)


def test_unreadable_and_foreign_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(WeightsError, match="weights file not found"):
        PasstClassifier.from_file(tmp_path / "missing.pt")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not a PaSST state dict"):
        PasstClassifier.from_file(tmp_path / "other.pt")


def test_cli_kl(peer, tmp_path, capsys):
    from audiogen import audio
    from tests.eval.test_cli import run

    _, path = peer
    ref, gen = tmp_path / "ref", tmp_path / "gen"
    ref.mkdir(), gen.mkdir()
    for i in range(3):
        audio.save(ref / f"c{i}.wav", _clip(2.0, i), 32000)
        audio.save(gen / f"c{i}.wav", _clip(2.0, i) if i else _clip(2.0, 9) * 0.2, 32000)
    audio.save(gen / "extra.wav", _clip(1.0, 5), 32000)  # no reference of that name: skipped
    argv = ["eval", "kl", "--reference", str(ref), "--generated", str(gen), "--classifier",
            "passt", "--weights", str(path), "--out", str(tmp_path / "rep"),
            "--no-progress"]  # fmt: skip
    rc, out, _ = run(argv, capsys)
    assert rc == 0
    summary = json.loads(out)
    report = json.loads((tmp_path / "rep" / "kl.json").read_text())
    scores = {p["path"].rsplit("/", 1)[-1]: p["score"] for p in report["items"]}
    assert set(scores) == {"c0.wav", "c1.wav", "c2.wav"}
    assert scores["c1.wav"] == pytest.approx(0.0, abs=1e-9)  # identical audio
    assert scores["c0.wav"] > 1e-4
    assert summary["kl"] == pytest.approx(np.mean(list(scores.values())))
