"""``audiogen codec`` / ``audiogen import`` commands, driven through their parser."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from audiogen import audio
from audiogen.cli import codec as codec_cli
from audiogen.cli import imports as imports_cli
from audiogen.codecs import Codec, CodecConfig, build_codec
from audiogen.errors import UserError


def run(argv: list[str]) -> int:
    """Parse and dispatch like ``audiogen.cli.main`` (UserError -> exit code 2)."""
    parser = argparse.ArgumentParser(prog="audiogen")
    sub = parser.add_subparsers(dest="command")
    codec_cli.register(sub)
    imports_cli.register(sub)
    args = parser.parse_args([str(a) for a in argv])
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e}")
        return 2


@pytest.fixture
def codec_dir(tmp_path):
    codec = build_codec(CodecConfig.tiny().replace(kmeans_init=False))
    return codec.save(tmp_path / "codec")


def test_encode_decode_round_trip(tmp_path, codec_dir, capsys):
    wav = 0.3 * torch.sin(torch.arange(8000) / 8000 * 2 * torch.pi * 220)[None].repeat(2, 1)
    src = audio.save(tmp_path / "in.wav", wav, 8000)  # stereo 8 kHz -> mono 16 kHz
    assert run(["codec", "encode", src, "-o", tmp_path / "c.npz", "--codec", codec_dir]) == 0
    assert "4 codebooks x 250 frames" in capsys.readouterr().out
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert z["codes"].dtype == np.int16 and z["codes"].shape == (4, 250)
        assert int(z["length"]) == 16000
    assert (
        run(
            [
                "codec",
                "decode",
                tmp_path / "c.npz",
                "-o",
                tmp_path / "out.wav",
                "--codec",
                codec_dir,
            ]
        )
        == 0
    )
    wav_out, sr = audio.load(tmp_path / "out.wav")
    assert sr == 16000 and wav_out.shape == (1, 16000)
    codec = Codec.load(codec_dir)
    with np.load(tmp_path / "c.npz") as z:
        ref = codec.decode(torch.from_numpy(z["codes"].astype(np.int64))[None], length=16000)
    assert (wav_out - ref[0].clamp(-1, 1)).abs().max() < 1e-4  # 16-bit PCM rounding


def test_encode_with_bandwidth_and_errors(tmp_path, codec_dir, capsys):
    src = audio.save(tmp_path / "in.wav", torch.zeros(1, 1600), 16000)
    out = tmp_path / "c.npz"
    assert run(["codec", "encode", src, "-o", out, "--codec", codec_dir, "--bandwidth", 1.5]) == 0
    assert "1 codebooks" in capsys.readouterr().out
    assert run(["codec", "encode", src, "-o", out, "--codec", codec_dir, "--bandwidth", 3]) == 2
    assert "3 kbps is not supported" in capsys.readouterr().out
    assert run(["codec", "encode", tmp_path / "none.wav", "-o", out, "--codec", codec_dir]) == 2
    assert "none.wav" in capsys.readouterr().out
    assert run(["codec", "encode", src, "-o", out, "--codec", tmp_path / "nodir"]) == 2
    assert "nodir: codec directory not found" in capsys.readouterr().out
    (tmp_path / "bad.npz").write_bytes(b"junk")
    assert (
        run(
            [
                "codec",
                "decode",
                tmp_path / "bad.npz",
                "-o",
                tmp_path / "o.wav",
                "--codec",
                codec_dir,
            ]
        )
        == 2
    )
    assert "bad.npz: not a readable .npz" in capsys.readouterr().out
    np.savez(
        tmp_path / "wrong.npz",
        codes=np.full((4, 3), 999, np.int16),
        sample_rate=16000,
        channels=1,
        length=192,
        frame_rate=250,
        cardinality=64,
    )
    assert (
        run(
            [
                "codec",
                "decode",
                tmp_path / "wrong.npz",
                "-o",
                tmp_path / "o.wav",
                "--codec",
                codec_dir,
            ]
        )
        == 2
    )
    assert "codes outside [0, 64)" in capsys.readouterr().out
    assert not (tmp_path / "o.wav").exists()


def test_import_encodec_state_dict(tmp_path, randomize_codebooks):
    encodec = pytest.importorskip("encodec")
    peer = encodec.EncodecModel.encodec_model_24khz(pretrained=False)
    randomize_codebooks(peer, scale=0.05)
    torch.save(peer.state_dict(), tmp_path / "encodec_24khz.th")
    assert run(["import", "encodec", tmp_path / "encodec_24khz.th", "--out", tmp_path / "c"]) == 0
    codec = Codec.load(tmp_path / "c")
    assert (codec.sample_rate, codec.channels, codec.quantizer.n_q) == (24000, 1, 32)
    x = torch.randn(1, 1, 2400) * 0.3
    with torch.no_grad():
        ref = torch.cat([c for c, _ in peer.encode(x)], -1)
    assert torch.equal(codec.encode(x), ref)
    (tmp_path / "bad.th").write_bytes(b"\x80junk")
    assert run(["import", "encodec", tmp_path / "bad.th", "--out", tmp_path / "d"]) == 2
    assert not (tmp_path / "d").exists()


def test_import_hf_encodec_directory(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.EncodecConfig(
        upsampling_ratios=[4, 4],
        num_filters=4,
        hidden_size=16,
        codebook_size=64,
        target_bandwidths=[1.5],
        sampling_rate=16000,
        use_causal_conv=False,
    )
    transformers.EncodecModel(cfg).save_pretrained(tmp_path / "hf")
    assert run(["import", "hf-encodec", tmp_path / "hf", "--out", tmp_path / "c"]) == 0
    assert "16000 Hz, 1 ch" in capsys.readouterr().out
    assert run(["import", "hf-encodec", tmp_path / "missing", "--out", tmp_path / "d"]) == 2
    assert "missing: directory not found" in capsys.readouterr().out


def _latent_error(codec: Codec, wav: torch.Tensor) -> float:
    """Energy of the encoder's output that the RVQ misses, relative to the output's."""
    with torch.no_grad():
        z = codec.encoder(wav[None])
        q = codec.quantizer.decode(codec.quantizer.encode(z))
    return float((z - q).pow(2).mean() / z.pow(2).mean())


def _item(path, split: str = "train"):
    from audiogen.data.manifest import ManifestItem

    return ManifestItem(path=str(path), duration=1.0, sample_rate=16000, channels=1, split=split)


def test_refit_fits_the_codebooks_and_skips_broken_files(tmp_path, capsys):
    from audiogen.data.manifest import write_manifest

    torch.manual_seed(0)
    codec = build_codec(CodecConfig.tiny())  # k-means init: codebooks zero until trained
    src = codec.save(tmp_path / "codec")
    t = torch.arange(16000) / 16000
    items = []
    for i, f0 in enumerate([110.0, 220.0, 330.0, 440.0, 550.0]):
        path = audio.save(
            tmp_path / f"tone{i}.wav", 0.3 * torch.sin(2 * torch.pi * f0 * t)[None], 16000
        )
        items.append(_item(path))
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really audio")
    items += [_item(tmp_path / "broken.wav"), _item(tmp_path / "tone0.wav", split="test")]
    write_manifest(tmp_path / "manifest.jsonl", items)

    out = tmp_path / "refit"
    argv = ["codec", "refit", "--codec", src, "--manifest", tmp_path / "manifest.jsonl"]
    assert run([*argv, "--out", out, "--iters", "10"]) == 0
    text = capsys.readouterr().out
    assert "skipped" in text and "broken.wav" in text
    assert "1250 frames of 5 items, 1 skipped" in text  # 5 x 250 frames; the test item not used
    assert text.count("perplexity") == 4
    refit = Codec.load(out).eval()
    probe = 0.3 * torch.sin(2 * torch.pi * 330.0 * t)[None]
    # Zero codebooks miss everything; the refitted ones keep most of the latent.
    assert _latent_error(Codec.load(src).eval(), probe) > 0.99
    assert _latent_error(refit, probe) < 0.2
    # Encoder and decoder are the trained ones.
    before = dict(Codec.load(src).named_parameters())
    for name, p in refit.named_parameters():
        torch.testing.assert_close(p, before[name])


def test_refit_errors_name_the_problem(tmp_path, codec_dir, capsys):
    from audiogen.data.manifest import write_manifest

    write_manifest(tmp_path / "m.jsonl", [_item(tmp_path / "x.wav", split="test")])
    argv = ["codec", "refit", "--codec", codec_dir, "--manifest", tmp_path / "m.jsonl"]
    assert run([*argv, "--out", tmp_path / "o"]) == 2
    assert "no items in split 'train'" in capsys.readouterr().out
    assert run([*argv, "--out", tmp_path / "o", "--split", "test"]) == 2
    assert "no readable audio" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()
