"""Fixtures in the real on-disk formats: FMA (3-row-header tracks.csv + MP3), MUSDB18-HQ,
folders with broken files, and small MIDI + FLAC pairs."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000


def tone(seconds: float, freq: float = 440.0, sr: int = SR, channels: int = 1, amp: float = 0.5):
    """A sine tone, float32 [T, C] as soundfile wants."""
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1)


def write_tone(
    path: Path, seconds: float = 2.0, freq: float = 440.0, sr: int = SR, channels: int = 1
):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, freq, sr, channels), sr)
    return path


def write_mp3(path: Path, seconds: float = 2.0, freq: float = 440.0):
    """An MP3 made by ffmpeg from a sine source, as FMA's files are real MP3s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi"]
    cmd += ["-i", f"sine=frequency={freq}:duration={seconds}:sample_rate=22050"]
    cmd += ["-c:a", "libmp3lame", "-b:a", "64k", str(path)]
    subprocess.run(cmd, check=True)
    return path


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")

# Columns in FMA's order (a subset of each group, enough for the parser to find its own).
FMA_COLUMNS = [
    ("album", "id"),
    ("album", "title"),
    ("artist", "id"),
    ("artist", "name"),
    ("artist", "bio"),
    ("set", "split"),
    ("set", "subset"),
    ("track", "bit_rate"),
    ("track", "genre_top"),
    ("track", "genres"),
    ("track", "genres_all"),
    ("track", "tags"),
    ("track", "title"),
]


def write_fma_metadata(root: Path, rows: list[dict]) -> None:
    """tracks.csv with FMA's three header rows, and genres.csv."""
    meta = root / "fma_metadata"
    meta.mkdir(parents=True, exist_ok=True)
    with open(meta / "tracks.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([""] + [g for g, _ in FMA_COLUMNS])
        w.writerow([""] + [n for _, n in FMA_COLUMNS])
        w.writerow(["track_id"] + [""] * len(FMA_COLUMNS))
        for r in rows:
            w.writerow([r["track_id"]] + [r.get(f"{g}.{n}", "") for g, n in FMA_COLUMNS])
    with open(meta / "genres.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["genre_id", "#tracks", "parent", "title", "top_level"])
        for gid, title, parent in (
            (21, "Hip-Hop", 0),
            (12, "Rock", 0),
            (25, "Punk", 12),
            (15, "Electronic", 0),
        ):
            w.writerow([gid, 10, parent, title, parent or gid])


@pytest.fixture
def fma_root(tmp_path: Path) -> Path:
    root = tmp_path / "fma"
    rows = [
        {
            "track_id": 2,
            "artist.name": "AWOL",
            "artist.bio": 'A "bio"\nwith, commas\nand lines',
            "set.split": "training",
            "track.genre_top": "Hip-Hop",
            "track.genres": "[21]",
            "track.tags": "['chill', 'lo-fi']",
            "track.title": "Food",
        },
        {
            "track_id": 140,
            "artist.name": "Alec K. Redfearn",
            "set.split": "validation",
            "track.genre_top": "Rock",
            "track.genres": "[12, 25]",
            "track.tags": "[]",
            "track.title": "Queen Of The Wires",
        },
        {"track_id": 1482, "set.split": "test", "track.genres": "[15]", "track.title": "Untitled"},
        {"track_id": 5, "set.split": "training", "track.title": "no audio for this one"},
    ]
    write_fma_metadata(root, rows)
    write_mp3(root / "fma_small/000/000002.mp3", 2.0, 330.0)
    write_mp3(root / "fma_small/000/000140.mp3", 2.0, 440.0)
    write_mp3(root / "fma_small/001/001482.mp3", 2.0, 550.0)
    bad = root / "fma_small/001/001483.mp3"
    bad.write_bytes(b"ID3\x03\x00\x00\x00" + bytes(range(256)) * 4)  # not decodable
    return root


@pytest.fixture
def musdb_hq(tmp_path: Path) -> Path:
    root = tmp_path / "musdb18hq"
    tracks = {
        "train": ["Artist A - Song One", "Actions - One Minute Smile"],
        "test": ["Band B - Closing Time"],
    }
    for subset, names in tracks.items():
        for k, name in enumerate(names):
            d = root / subset / name
            d.mkdir(parents=True)
            stems = {}
            for j, stem in enumerate(("drums", "bass", "other", "vocals")):
                stems[stem] = tone(1.5, 110.0 * (j + 1) * (k + 1), channels=2) * 0.4
                sf.write(d / f"{stem}.wav", stems[stem], SR)
            sf.write(d / "mixture.wav", sum(stems.values()), SR)
    return root


def write_broken_tree(root: Path) -> dict[str, str]:
    """A folder of good and broken audio; returns {file name: expected reason word}."""
    root.mkdir(parents=True, exist_ok=True)
    write_tone(root / "good.wav", 2.0)
    (root / "good.txt").write_text("a calm sine tone\n", encoding="utf-8")
    write_tone(root / "sub" / "good2.flac", 2.0, 660.0)
    (root / "sub" / "good2.json").write_text('{"caption": "a bright tone", "genre": "test"}')
    (root / "empty.wav").write_bytes(b"")
    sf.write(root / "noframes.wav", np.zeros((0, 1), np.float32), SR)
    sf.write(root / "silent.wav", np.zeros((SR * 2, 1), np.float32), SR)
    x = tone(2.0)
    x[100] = np.nan
    sf.write(root / "nan.wav", x, SR, subtype="FLOAT")
    write_tone(root / "short.wav", 0.2)
    (root / "garbage.mp3").write_bytes(
        b"\xff\xfb" + bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8))
    )
    (root / "notaudio.wav").write_text("hello, I am text")
    return {
        "empty.wav": "empty",
        "noframes.wav": "empty",
        "silent.wav": "silent",
        "nan.wav": "non-finite",
        "short.wav": "too short",
        "garbage.mp3": "",
        "notaudio.wav": "unreadable",
    }
