"""Index MUSDB18-HQ (WAV stems) and MUSDB18 (``.stem.mp4``, decoded with ffmpeg).

MUSDB18-HQ: ``ROOT/{train,test}/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav``.
MUSDB18: ``ROOT/{train,test}/<Artist - Title>.stem.mp4`` whose audio streams are, in order,
mixture, drums, bass, other, vocals. With ``no_vocals`` the indexed audio is drums + bass +
other summed into a file (MusicGen trained on instrumental music); decoded and summed audio
is written under ``audio_dir``. The 14 tracks musdb's own tools hold out for validation
become the ``valid`` split.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from audiogen import audio
from audiogen.data.report import Candidate, IndexReport, index_candidates
from audiogen.errors import UserError

STEMS = ("drums", "bass", "other", "vocals")
_MP4_STREAMS = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
VALIDATION_TRACKS = frozenset(
    {
        "Actions - One Minute Smile",
        "Alexander Ross - Goodbye Bolero",
        "ANiMAL - Rockshow",
        "Clara Berry And Wooldog - Waltz For My Victims",
        "Fergessen - Nos Palpitants",
        "James May - On The Line",
        "Johnny Lokke - Promises & Lies",
        "Leaf - Summerghost",
        "Meaxic - Take A Step",
        "Patrick Talbot - A Reason To Leave",
        "Skelpolu - Human Mistakes",
        "Traffic Experiment - Sirens",
        "Triviul - Angelsaint",
        "Young Griffo - Pennies",
    }
)


def index_musdb(
    root: str | os.PathLike,
    *,
    audio_dir: str | os.PathLike,
    no_vocals: bool = False,
    min_duration: float = 1.0,
    progress: bool = True,
) -> IndexReport:
    """Index MUSDB18(-HQ) under ``root``; derived audio goes to ``audio_dir``.

    Tracks whose stems cannot be read or decoded are reported, never fatal.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--musdb: not a directory: {root}")
    audio_dir = Path(audio_dir)
    candidates: list[Candidate] = []
    failures: list[tuple[Path, str]] = []
    found = 0
    for subset in ("train", "test"):
        folder = root / subset
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            name = _track_name(entry)
            if name is None:
                continue
            found += 1
            split = (
                "test" if subset == "test" else "valid" if name in VALIDATION_TRACKS else "train"
            )
            fields = _fields(name, split=split, no_vocals=no_vocals)
            out = audio_dir / subset / f"{name}.{'no_vocals' if no_vocals else 'mixture'}.flac"
            try:
                if entry.is_dir():
                    path = entry / "mixture.wav"
                    if no_vocals:
                        path = _sum_stems([entry / f"{s}.wav" for s in STEMS[:3]], out)
                else:
                    path = _decode_mp4(entry, out, no_vocals=no_vocals)
            except (audio.AudioError, _DecodeError) as e:
                failures.append((entry, str(e)))
                continue
            candidates.append(Candidate(path, fields))
    if not found:
        raise UserError(
            f"{root}: no MUSDB18 tracks found (expected train/ or test/ holding "
            "<track>/mixture.wav or <track>.stem.mp4)"
        )
    report = index_candidates(
        candidates, source="musdb", min_duration=min_duration, progress=progress
    )
    for path, reason in failures:
        report.skip(path, reason)
    return report


class _DecodeError(Exception):
    pass


def _track_name(entry: Path) -> str | None:
    if entry.name.startswith("."):
        return None
    if entry.is_dir():
        return entry.name
    if entry.name.endswith(".stem.mp4"):
        return entry.name[: -len(".stem.mp4")]
    return None


def _fields(name: str, *, split: str, no_vocals: bool) -> dict:
    artist, _, title = name.partition(" - ")
    title = title or artist
    what = "instrumental of the song" if no_vocals else "song"
    desc = f'{what} "{title}" by {artist}' if title != artist else f'{what} "{title}"'
    instruments = ["drums", "bass", "other"] if no_vocals else ["drums", "bass", "other", "vocals"]
    return {"split": split, "description": desc, "title": title, "instruments": instruments}


def _sum_stems(paths: list[Path], out: Path) -> Path:
    """Write the sum of stem files to ``out`` (skipped when ``out`` exists)."""
    if out.is_file():
        return out
    wavs, sr = [], None
    for p in paths:
        wav, rate = audio.load(p)
        if sr is not None and rate != sr:
            raise _DecodeError(f"stem {p.name} has sample rate {rate}, expected {sr}")
        sr = rate
        wavs.append(wav)
    length = min(w.shape[-1] for w in wavs)
    channels = max(w.shape[0] for w in wavs)
    mix = torch.zeros(channels, length)
    for w in wavs:
        mix += audio.convert_channels(w[:, :length], channels)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Stems can sum past full scale and FLAC is fixed point: rescale rather than clip.
    peak = float(mix.abs().max())
    if peak > 1.0:
        mix = mix / peak
    audio.save(out, mix, sr)
    return out


def _decode_mp4(path: Path, out: Path, *, no_vocals: bool) -> Path:
    """Decode the mixture (or drums+bass+other) of a ``.stem.mp4`` to FLAC at ``out``."""
    if out.is_file():
        return out
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise UserError(
            f"{path}: reading MUSDB18 .stem.mp4 needs ffmpeg, which is not installed "
            "(install ffmpeg, e.g. `apt install ffmpeg`, or use the MUSDB18-HQ WAV release)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    streams = ["drums", "bass", "other"] if no_vocals else ["mixture"]
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        parts = []
        for s in streams:
            wav = Path(tmp) / f"{s}.wav"
            cmd = [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(path)]
            cmd += ["-map", f"0:a:{_MP4_STREAMS[s]}", "-c:a", "pcm_f32le", str(wav)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                msg = (r.stderr.strip().splitlines() or ["unknown error"])[-1]
                raise _DecodeError(f"ffmpeg could not decode stream '{s}': {msg}")
            parts.append(wav)
        if len(parts) == 1:
            mix, sr = audio.load(parts[0])
            audio.save(out, mix, sr)
        else:
            _sum_stems(parts, out)
    return out
