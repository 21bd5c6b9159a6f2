"""CLI error paths of `audiogen render` and `audiogen synth fit`: exit 2, one `error:` line,
no traceback, nothing left at the output path."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from audiogen.cli import main


def _run_error(capsys, argv, out):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    assert not out.exists()
    leftovers = [p.name for p in out.parent.glob("*.tmp*")] if out.parent.is_dir() else []
    assert not leftovers, leftovers
    return err[0]


def test_render_writes_audio(tmp_path, melody_mid, capsys):
    out = tmp_path / "out.wav"
    assert main(["render", str(melody_mid), "-o", str(out), "--sample-rate", "16000"]) == 0
    data, sr = sf.read(out)
    assert sr == 16000 and len(data) > 3 * sr and np.abs(data).max() > 0.01
    assert "wrote" in capsys.readouterr().out


def test_render_missing_file(tmp_path, capsys):
    msg = _run_error(
        capsys,
        ["render", str(tmp_path / "nope.mid"), "-o", str(tmp_path / "o.wav")],
        tmp_path / "o.wav",
    )
    assert "nope.mid" in msg


def test_render_non_midi_file(tmp_path, capsys):
    bad = tmp_path / "song.mid"
    bad.write_text("this is not MIDI")
    _run_error(capsys, ["render", str(bad), "-o", str(tmp_path / "o.wav")], tmp_path / "o.wav")


def test_render_midi_without_notes(tmp_path, capsys):
    empty = tmp_path / "empty.mid"
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(pretty_midi.Instrument(program=0))
    pm.write(str(empty))
    _run_error(capsys, ["render", str(empty), "-o", str(tmp_path / "o.wav")], tmp_path / "o.wav")


def test_render_drums_only_has_no_pitched_notes(tmp_path, capsys):
    drums = tmp_path / "drums.mid"
    pm = pretty_midi.PrettyMIDI()
    kit = pretty_midi.Instrument(program=0, is_drum=True)
    kit.notes.append(pretty_midi.Note(velocity=100, pitch=36, start=0, end=0.1))
    pm.instruments.append(kit)
    pm.write(str(drums))
    _run_error(capsys, ["render", str(drums), "-o", str(tmp_path / "o.wav")], tmp_path / "o.wav")


def test_render_unknown_instrument(tmp_path, melody_mid, capsys):
    out = tmp_path / "o.wav"
    msg = _run_error(
        capsys, ["render", str(melody_mid), "-o", str(out), "--instrument", "kazoo"], out
    )
    assert "kazoo" in msg and "flute" in msg


def test_render_bad_track(tmp_path, melody_mid, capsys):
    out = tmp_path / "o.wav"
    _run_error(capsys, ["render", str(melody_mid), "-o", str(out), "--track", "5"], out)


@pytest.mark.parametrize("content", [None, b"", b"garbage bytes, not safetensors" * 10])
def test_render_bad_timbre_file(tmp_path, melody_mid, capsys, content):
    timbre = tmp_path / "t.safetensors"
    if content is not None:
        timbre.write_bytes(content)
    out = tmp_path / "o.wav"
    _run_error(capsys, ["render", str(melody_mid), "-o", str(out), "--timbre", str(timbre)], out)


def test_render_foreign_safetensors_file(tmp_path, melody_mid, capsys):
    import torch
    from safetensors.torch import save_file

    timbre = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(timbre))
    out = tmp_path / "o.wav"
    msg = _run_error(
        capsys, ["render", str(melody_mid), "-o", str(out), "--timbre", str(timbre)], out
    )
    assert "timbre" in msg


@pytest.mark.parametrize("name", ["o.xyz", "missing_dir/o.wav", "a_dir"])
def test_render_bad_output_path(tmp_path, melody_mid, capsys, name):
    (tmp_path / "a_dir").mkdir()
    out = tmp_path / name
    argv = ["render", str(melody_mid), "-o", str(out)]
    if name == "a_dir":
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
        assert not list(out.iterdir())
    else:
        _run_error(capsys, argv, out)


def _wav(path, audio, sr=16000):
    sf.write(str(path), audio, sr)
    return path


@pytest.mark.parametrize(
    "kind", ["missing", "not_audio", "silent", "too_short", "unpitched_noise", "bad_out"]
)
def test_synth_fit_errors(tmp_path, capsys, kind):
    rng = np.random.default_rng(0)
    src = tmp_path / "in.wav"
    out = tmp_path / "timbre.safetensors"
    if kind == "not_audio":
        src.write_text("not audio at all")
    elif kind == "silent":
        _wav(src, np.zeros(32000))
    elif kind == "too_short":
        t = np.arange(4000) / 16000
        _wav(src, 0.3 * np.sin(2 * np.pi * 220 * t))
    elif kind == "unpitched_noise":
        _wav(src, 0.3 * rng.standard_normal(32000))
    elif kind == "bad_out":
        t = np.arange(32000) / 16000
        _wav(src, 0.3 * np.sin(2 * np.pi * 220 * t))
        out = tmp_path / "timbre.pt"
    argv = ["synth", "fit", str(src), "--out", str(out), "--steps", "2", "--sample-rate", "16000"]
    _run_error(capsys, argv, out)
