"""Broken-input checks and the index report.

Indexing never stops on a bad file: each one is probed, and unreadable, empty, too-short,
non-finite or silent-only files are skipped and listed with a reason in
``index_report.json`` and in the printed summary.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from audiogen import audio
from audiogen.data.manifest import ManifestItem
from audiogen.fileio import atomic_write_text

# A file whose peak never exceeds -60 dBFS carries nothing a model can learn from.
SILENCE_PEAK = 10 ** (-60 / 20)
_BLOCK = 1 << 16


class BrokenInput(Exception):
    """A file that cannot be used for training; ``reason`` is one short phrase."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Skipped:
    """A skipped input and why it was skipped."""

    path: str
    reason: str


@dataclass
class IndexReport:
    """What an index or corpus build kept and what it skipped."""

    source: str
    items: list[ManifestItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, path: str | os.PathLike, reason: str) -> None:
        self.skipped.append(Skipped(str(path), reason))

    @property
    def hours(self) -> float:
        return sum(i.duration for i in self.items) / 3600.0

    def to_dict(self) -> dict:
        splits: dict[str, int] = {}
        for item in self.items:
            splits[item.split] = splits.get(item.split, 0) + 1
        return {
            "source": self.source,
            "indexed": len(self.items),
            "hours": round(self.hours, 4),
            "splits": splits,
            "skipped_count": len(self.skipped),
            "skipped": [asdict(s) for s in self.skipped],
        }

    def write(self, path: str | os.PathLike) -> None:
        """Write the report as JSON (atomically)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    def summary(self, max_listed: int = 20) -> str:
        """A few human-readable lines: counts, hours, splits and the skipped files."""
        d = self.to_dict()
        splits = ", ".join(f"{k} {v}" for k, v in sorted(d["splits"].items())) or "none"
        lines = [
            f"{self.source}: indexed {d['indexed']} item(s), {self.hours:.2f} h ({splits}); "
            f"skipped {len(self.skipped)}"
        ]
        for s in self.skipped[:max_listed]:
            lines.append(f"  skipped {s.path}: {s.reason}")
        if len(self.skipped) > max_listed:
            lines.append(f"  ... and {len(self.skipped) - max_listed} more (see index_report.json)")
        return "\n".join(lines)


def probe_audio(path: str | os.PathLike, *, min_duration: float = 1.0) -> audio.AudioInfo:
    """Check that ``path`` is usable training audio and return its header.

    Decodes the whole file in blocks (so long files cost no extra memory) to find
    non-finite samples and silence. Raises :class:`BrokenInput` with the reason otherwise.
    """
    try:
        info = audio.info(path)
    except audio.AudioError as e:
        raise BrokenInput(_strip_path(str(e), path)) from None
    if info.sample_rate <= 0:
        raise BrokenInput("unreadable: sample rate 0")
    # A zero frame count may just be an MP3 without a length header: decode to be sure.
    if info.frames and info.duration < min_duration:
        raise BrokenInput(f"too short: {info.duration:.2f} s < {min_duration:g} s minimum")
    peak = 0.0
    frames = 0
    try:
        for block in sf.blocks(str(path), blocksize=_BLOCK, dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                raise BrokenInput("non-finite samples (NaN or inf)")
            frames += block.shape[0]
            if block.size:
                peak = max(peak, float(np.abs(block).max()))
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise BrokenInput(f"unreadable: {e}") from None
    if frames == 0:
        raise BrokenInput("empty: no audio samples")
    # Headers can lie (truncated files); the decoded length is what training will see.
    if frames / info.sample_rate < min_duration:
        raise BrokenInput(
            f"too short: {frames / info.sample_rate:.2f} s decoded < {min_duration:g} s minimum"
        )
    if peak < SILENCE_PEAK:
        raise BrokenInput(f"silent: peak {_db(peak)} dBFS")
    return audio.AudioInfo(info.path, info.sample_rate, info.channels, frames)


def _db(x: float) -> str:
    return "-inf" if x <= 0 else f"{20 * np.log10(x):.1f}"


def _strip_path(msg: str, path: str | os.PathLike) -> str:
    # The report already names the file; keep only the reason.
    prefix = f"{Path(path)}: "
    msg = msg[len(prefix) :] if msg.startswith(prefix) else msg
    return f"unreadable: {msg}" if "empty" not in msg else f"empty: {msg}"


@dataclass
class Candidate:
    """An audio file found by an indexer, with the manifest fields known for it.

    ``fields`` holds any :class:`ManifestItem` field except the four read from the file
    (path, duration, sample_rate, channels).
    """

    path: Path
    fields: dict = field(default_factory=dict)


def index_candidates(
    candidates: list[Candidate],
    *,
    source: str,
    min_duration: float = 1.0,
    progress: bool = True,
) -> IndexReport:
    """Probe every candidate; keep the good ones as manifest items, report the rest."""
    from tqdm import tqdm

    report = IndexReport(source=source)
    for cand in tqdm(candidates, desc=f"index {source}", unit="file", disable=not progress):
        try:
            info = probe_audio(cand.path, min_duration=min_duration)
        except BrokenInput as e:
            report.skip(cand.path, e.reason)
            continue
        report.items.append(
            ManifestItem(
                path=str(cand.path),
                duration=round(info.frames / info.sample_rate, 6),
                sample_rate=info.sample_rate,
                channels=info.channels,
                **{"source": source, **cand.fields},
            )
        )
    return report
