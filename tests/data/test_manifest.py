import json

import pytest

from audiogen.data.manifest import ManifestItem, read_manifest, write_manifest
from audiogen.data.splits import hash_split
from audiogen.errors import UserError


def test_round_trip_with_relative_paths(tmp_path):
    items = [
        ManifestItem(
            path=str(tmp_path / "audio" / "a.flac"),
            duration=3.5,
            sample_rate=32000,
            channels=1,
            description="a slow air",
            split="valid",
            instruments=["flute"],
            bpm=66.0,
            key="D major",
            midi=str(tmp_path / "midi" / "a.mid"),
            source="music21:oneills",
        ),
        ManifestItem(path="/elsewhere/b.wav", duration=1.0, sample_rate=44100, channels=2),
    ]
    path = tmp_path / "manifest.jsonl"
    write_manifest(path, items)
    first = json.loads(path.read_text().splitlines()[0])
    assert first["path"] == "audio/a.flac" and first["midi"] == "midi/a.mid"
    assert read_manifest(path) == items


@pytest.mark.parametrize(
    "line, words",
    [
        ("{not json", "Expecting"),
        ('{"path": "x.wav", "duration": 1, "sample_rate": 16000}', "missing field(s) channels"),
        ('{"path": "x.wav", "duration": -1, "sample_rate": 16000, "channels": 1}', "duration"),
        (
            '{"path": "x.wav", "duration": 1, "sample_rate": 16000, "channels": 1, "split": "dev"}',
            "split",
        ),
        (
            '{"path": "x.wav", "duration": 1, "sample_rate": 16000, "channels": 1, "colour": 1}',
            "colour",
        ),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, words):
    good = '{"path": "x.wav", "duration": 1.0, "sample_rate": 16000, "channels": 1}'
    path = tmp_path / "m.jsonl"
    path.write_text(f"{good}\n\n{good}\n{line}\n")
    with pytest.raises(UserError) as e:
        read_manifest(path)
    assert f"{path}:4:" in str(e.value) and words in str(e.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_manifest(tmp_path / "nope.jsonl")


def test_hash_split_is_stable_and_proportional():
    keys = [f"piece/{i}" for i in range(4000)]
    splits = [hash_split(k, seed=3) for k in keys]
    assert splits == [hash_split(k, seed=3) for k in keys]
    assert 0.03 < splits.count("valid") / len(keys) < 0.07
    assert 0.03 < splits.count("test") / len(keys) < 0.07
    assert splits != [hash_split(k, seed=4) for k in keys]
