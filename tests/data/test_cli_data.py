import argparse

import pytest

from audiogen.cli import data as data_cli
from audiogen.errors import UserError


def _parse(argv):
    parser = argparse.ArgumentParser(prog="audiogen")
    data_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_build_corpus_unknown_source_is_a_user_error(tmp_path):
    args = _parse(["data", "build-corpus", "--source", "music21:mozart", "--out", str(tmp_path)])
    with pytest.raises(UserError, match="unknown corpus source"):
        args.func(args)


def test_build_corpus_via_cli(tmp_path, capsys):
    argv = ["data", "build-corpus", "--source", "music21:nottingham", "--out", str(tmp_path)]
    args = _parse(argv + ["--limit", "1", "--sample-rate", "16000", "--max-seconds", "4"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "indexed 1 item(s)" in out and (tmp_path / "manifest.jsonl").is_file()


def test_index_requires_one_source(tmp_path):
    with pytest.raises(SystemExit):
        _parse(["data", "index", "--out", str(tmp_path / "m.jsonl")])
    args = _parse(
        ["data", "index", "--musdb", str(tmp_path / "nope"), "--out", str(tmp_path / "m.jsonl")]
    )
    with pytest.raises(UserError, match="not a directory"):
        args.func(args)
