"""``audiogen eval`` through the CLI front: reports written, user errors are one line."""

from __future__ import annotations

import argparse
import json

import pytest

from audiogen.cli import eval as eval_cli
from audiogen.errors import UserError


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Parse with a parser holding only ``eval`` and run like ``audiogen.cli.main`` does."""
    parser = argparse.ArgumentParser(prog="audiogen")
    eval_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        rc = int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=__import__("sys").stderr)
        rc = 2
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_fad_report_json_markdown_plots(tmp_path, tone_set, vggish_weights, capsys):
    folder, _ = tone_set
    (gen := tmp_path / "gen").mkdir()
    for p in sorted(folder.glob("*.wav"))[:4]:
        (gen / p.name).write_bytes(p.read_bytes())
    (gen / "corrupt.wav").write_bytes(b"\x00" * 50)
    out = tmp_path / "report"
    rc, stdout, stderr = run(
        ["eval", "fad", "--reference", str(folder), "--generated", str(gen), "--embedding",
         "vggish", "--weights", str(vggish_weights), "--out", str(out), "--no-progress",
         "--save-stats", str(tmp_path / "ref.npz"), "--fad-inf"],
        capsys,
    )  # fmt: skip
    assert rc == 0, stderr
    summary = json.loads(stdout)
    assert summary["fad"] >= 0 and summary["skipped_files"] == 1 and "fad_inf" in summary
    assert "corrupt.wav" in stderr
    data = json.loads((out / "fad.json").read_text())
    assert data["details"]["embedding"]["postprocessing"].startswith("none")
    assert len(data["items"]) == 4 and data["failed"][0]["path"].endswith("corrupt.wav")
    md = (out / "fad.md").read_text()
    assert "fad_items.png" in md and "fad_pca.png" in md and "corrupt.wav" in md
    for png in ("fad_items.png", "fad_pca.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temp files


def test_missing_weights_is_a_user_error(tmp_path, tone_set, capsys):
    folder, _ = tone_set
    for emb in ("vggish", "encodec", "codec", "clap"):
        rc, _, err = run(
            ["eval", "fad", "--reference", str(folder), "--generated", str(folder),
             "--embedding", emb, "--weights", str(tmp_path / "nope.bin"), "--no-progress"],
            capsys,
        )  # fmt: skip
        assert rc == 2
        assert err.startswith(f"error: {emb}: ") and "nope.bin" in err and "\n" == err[-1]
    rc, _, err = run(
        ["eval", "fad", "--reference", str(folder), "--generated", str(folder), "--no-progress"],
        capsys,
    )
    assert rc == 2 and "vggish: no weights given" in err


def test_all_files_unreadable_is_a_user_error(tmp_path, tone_set, capsys):
    folder, _ = tone_set
    (bad := tmp_path / "bad").mkdir()
    (bad / "a.wav").write_bytes(b"junk")
    (bad / "b.flac").write_bytes(b"junk")
    rc, _, err = run(
        ["eval", "fad", "--reference", str(folder), "--generated", str(bad), "--embedding",
         "mfcc", "--out", str(tmp_path / "r"), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert rc == 2 and "2 skipped" in err
    rc, _, err = run(
        ["eval", "fad", "--reference", str(tmp_path / "empty"), "--generated", str(folder),
         "--embedding", "mfcc", "--no-progress"],
        capsys,
    )  # fmt: skip
    assert rc == 2 and "not a folder or a .jsonl manifest" in err


def test_chroma_command(tmp_path, capsys):
    pytest.importorskip("pretty_midi")
    from audiogen import audio, midi
    from audiogen.synth import render_notes
    from tests.eval.test_metrics import _write_midi

    (mel := tmp_path / "mel").mkdir()
    (gen := tmp_path / "gen").mkdir()
    _write_midi(mel / "a.mid", [60, 64, 67, 72, 67, 64])
    wav = render_notes(midi.load_notes(mel / "a.mid"), sample_rate=32000, reverb=False)
    audio.save(gen / "a.wav", wav, 32000)
    (gen / "b.wav").write_bytes(b"junk")  # no melody named b: not paired, not an error
    rc, out, err = run(
        ["eval", "chroma", "--melody", str(mel), "--generated", str(gen), "--out",
         str(tmp_path / "r"), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    assert json.loads(out)["chroma_cosine"] > 0.8 and json.loads(out)["items"] == 1


def test_codec_command(tmp_path, tone_set, capsys):
    from audiogen.codecs import Codec

    folder, _ = tone_set
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    Codec.tiny().save(tmp_path / "codec")
    rc, out, err = run(
        ["eval", "codec", "--codec", str(tmp_path / "codec"), "--audio", str(folder), "--out",
         str(tmp_path / "r"), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    s = json.loads(out)
    assert s["items"] == 6 and s["kbps"] > 0 and s["mel_distance"] > 0
    rc, _, err = run(
        ["eval", "codec", "--codec", str(tmp_path / "missing"), "--audio", str(folder)], capsys
    )
    assert rc == 2 and err.startswith("error: ") and "missing" in err
