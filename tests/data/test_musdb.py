import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from audiogen.data import musdb
from audiogen.data.musdb import index_musdb
from audiogen.errors import UserError

from .conftest import SR, needs_ffmpeg, tone


def test_musdb_hq_mixture(musdb_hq, tmp_path):
    report = index_musdb(musdb_hq, audio_dir=tmp_path / "derived", progress=False)
    split = {i.title: i.split for i in report.items}
    assert split == {"Song One": "train", "One Minute Smile": "valid", "Closing Time": "test"}
    assert all(i.path.endswith("mixture.wav") and i.channels == 2 for i in report.items)
    assert not report.skipped
    assert not (tmp_path / "derived").exists()


def test_musdb_hq_no_vocals_writes_stem_sum(musdb_hq, tmp_path):
    report = index_musdb(musdb_hq, audio_dir=tmp_path / "derived", no_vocals=True, progress=False)
    assert len(report.items) == 3
    item = next(i for i in report.items if i.title == "Song One")
    assert item.path.endswith("Song One.no_vocals.flac") and "instrumental" in item.description
    got, _ = sf.read(item.path, dtype="float32")
    track = musdb_hq / "train" / "Artist A - Song One"
    want = sum(sf.read(track / f"{s}.wav", dtype="float32")[0] for s in ("drums", "bass", "other"))
    np.testing.assert_allclose(got, want / max(1.0, np.abs(want).max()), atol=1e-3)


def test_musdb_broken_stem_is_reported(musdb_hq, tmp_path):
    (musdb_hq / "test" / "Band B - Closing Time" / "bass.wav").write_bytes(b"RIFF junk")
    report = index_musdb(musdb_hq, audio_dir=tmp_path / "d", no_vocals=True, progress=False)
    assert len(report.items) == 2
    assert len(report.skipped) == 1 and "Closing Time" in report.skipped[0].path


def _stem_mp4(path, tmp_path):
    wavs = []
    for k in range(5):
        w = tmp_path / f"s{k}.wav"
        sf.write(w, tone(1.5, 200.0 * (k + 1), channels=2) * (0.2 if k else 0.8), SR)
        wavs.append(w)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    for w in wavs:
        cmd += ["-i", str(w)]
    for k in range(5):
        cmd += ["-map", f"{k}:a"]
    subprocess.run(cmd + ["-c:a", "aac", "-b:a", "128k", str(path)], check=True)


@needs_ffmpeg
def test_musdb_stem_mp4_via_ffmpeg(tmp_path):
    root = tmp_path / "musdb18"
    (root / "train").mkdir(parents=True)
    _stem_mp4(root / "train" / "Some One - Tune.stem.mp4", tmp_path)
    report = index_musdb(root, audio_dir=tmp_path / "dec", progress=False)
    (item,) = report.items
    assert item.path.endswith("Tune.mixture.flac") and item.split == "train"
    assert 1.4 < item.duration < 1.7
    nv = index_musdb(root, audio_dir=tmp_path / "dec", no_vocals=True, progress=False).items[0]
    mix, _ = sf.read(item.path)
    inst, _ = sf.read(nv.path)
    # Streams are tones: mixture 200 Hz, drums/bass/other 400/600/800 Hz, vocals 1000 Hz.
    assert _energy_at(mix, 200) > 10 * _energy_at(mix, 400)
    assert min(_energy_at(inst, f) for f in (400, 600, 800)) > 10 * _energy_at(inst, 1000)
    assert _energy_at(inst, 400) > 10 * _energy_at(inst, 200)


def _energy_at(x, hz):
    spec = np.abs(np.fft.rfft(x[:, 0]))
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return spec[np.abs(freqs - hz) < 5].max()


def test_stem_mp4_without_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    root = tmp_path / "musdb18"
    (root / "test").mkdir(parents=True)
    (root / "test" / "A - B.stem.mp4").write_bytes(b"\0" * 100)
    monkeypatch.setattr(musdb.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="needs ffmpeg"):
        index_musdb(root, audio_dir=tmp_path / "d", progress=False)
    assert shutil.which  # the real one is untouched outside the module


def test_not_musdb(tmp_path):
    with pytest.raises(UserError, match="no MUSDB18 tracks"):
        index_musdb(tmp_path, audio_dir=tmp_path / "d", progress=False)
