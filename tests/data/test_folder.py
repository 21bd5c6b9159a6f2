import argparse
import json

import pytest

from audiogen.cli import data as data_cli
from audiogen.data.folder import index_folder
from audiogen.data.manifest import read_manifest
from audiogen.errors import UserError

from .conftest import write_broken_tree


def _run_cli(argv):
    parser = argparse.ArgumentParser(prog="audiogen")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_broken_tree_indexes_fully_and_reports_each(tmp_path, capsys):
    expected = write_broken_tree(tmp_path / "tree")
    out = tmp_path / "out" / "manifest.jsonl"
    assert _run_cli(["data", "index", "--folder", str(tmp_path / "tree"), "--out", str(out)]) == 0
    items = read_manifest(out)
    assert sorted(i.path.rsplit("/", 1)[-1] for i in items) == ["good.wav", "good2.flac"]
    captions = {i.path.rsplit("/", 1)[-1]: i for i in items}
    assert captions["good.wav"].description == "a calm sine tone"
    assert (
        captions["good2.flac"].description == "a bright tone"
        and captions["good2.flac"].genre == "test"
    )
    report = json.loads((tmp_path / "out" / "index_report.json").read_text())
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert word in reasons[name], (name, reasons[name])
    printed = capsys.readouterr().out
    assert "indexed 2 item(s)" in printed and "skipped 7" in printed
    for name in expected:
        assert name in printed


def test_split_folders_and_bad_sidecar(tmp_path):
    from .conftest import write_tone

    write_tone(tmp_path / "train" / "a.wav")
    write_tone(tmp_path / "test" / "b.wav")
    write_tone(tmp_path / "valid" / "c.wav")
    (tmp_path / "valid" / "c.json").write_text("{broken")
    report = index_folder(tmp_path, progress=False)
    assert {i.path.rsplit("/", 1)[-1]: i.split for i in report.items} == {
        "a.wav": "train",
        "b.wav": "test",
        "c.wav": "valid",
    }
    assert len(report.skipped) == 1 and "sidecar ignored" in report.skipped[0].reason


def test_not_a_folder(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        index_folder(tmp_path / "missing", progress=False)
