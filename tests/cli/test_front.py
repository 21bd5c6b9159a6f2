"""The command front: help, version, and the user-error contract (one line, exit 2)."""

import subprocess
import sys

import pytest

from audiogen.cli import build_parser, main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("render", "synth"):
        assert cmd in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: audiogen" in capsys.readouterr().out


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert p.format_help().startswith("usage: audiogen " + name)


def test_console_entry_runs_as_module():
    r = subprocess.run(
        [sys.executable, "-m", "audiogen", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.startswith("audiogen ")


def test_user_error_is_one_line_exit_2(tmp_path):
    missing = tmp_path / "missing.mid"
    out = tmp_path / "out.wav"
    r = subprocess.run(
        [sys.executable, "-m", "audiogen", "render", str(missing), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr and "missing.mid" in r.stderr
    assert not out.exists()


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["render", "x.mid"])  # missing -o
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: audiogen render: ") and err.count("\n") == 1


def test_outputs_get_normal_file_mode(tmp_path):
    import os

    import torch

    from audiogen import audio

    path = audio.save(tmp_path / "x.wav", torch.zeros(1, 100), 16000)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
