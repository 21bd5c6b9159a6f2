"""Dataset manifests: JSON Lines, one :class:`ManifestItem` per line.

Paths are stored relative to the manifest's directory when the audio lives under it, so a
built corpus can be moved or copied as a whole; reading resolves them to absolute paths.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from audiogen.errors import UserError
from audiogen.fileio import atomic_write_text

SPLITS = ("train", "valid", "test")


@dataclass
class ManifestItem:
    """One audio file with its caption and what is known about it.

    ``duration`` is in seconds; ``bpm`` counts beats (the dotted quarter in compound
    meters such as 6/8). ``midi`` is the source MIDI whose note times match the audio.
    """

    path: str
    duration: float
    sample_rate: int
    channels: int
    description: str = ""
    split: str = "train"
    genre: str | None = None
    instruments: list[str] = field(default_factory=list)
    bpm: float | None = None
    key: str | None = None
    midi: str | None = None
    source: str | None = None
    title: str | None = None
    piece: str | None = None  # the source piece, when one piece yields several items

    def to_json(self, base_dir: Path | None = None) -> str:
        """One JSON line; paths under ``base_dir`` are written relative to it."""
        d = dataclasses.asdict(self)
        if base_dir is not None:
            d["path"] = _relative(d["path"], base_dir)
            if d["midi"]:
                d["midi"] = _relative(d["midi"], base_dir)
        return json.dumps({k: v for k, v in d.items() if v is not None}, ensure_ascii=False)


_FIELDS = {f.name: f for f in dataclasses.fields(ManifestItem)}
_REQUIRED = ("path", "duration", "sample_rate", "channels")


def _relative(path: str, base_dir: Path) -> str:
    p = Path(path)
    if not p.is_absolute():
        return path
    try:
        return p.resolve().relative_to(base_dir.resolve()).as_posix()
    except ValueError:
        return str(p)


def _check_item(d: object) -> ManifestItem:
    """Build an item from a parsed line; raise ValueError saying what is wrong."""
    if not isinstance(d, dict):
        raise ValueError("expected a JSON object")
    unknown = sorted(set(d) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    if not isinstance(d["path"], str) or not d["path"]:
        raise ValueError("'path' must be a non-empty string")
    dur = d["duration"]
    if isinstance(dur, bool) or not isinstance(dur, int | float) or not math.isfinite(dur):
        raise ValueError("'duration' must be a finite number")
    if dur <= 0:
        raise ValueError(f"'duration' must be > 0, got {dur}")
    for k in ("sample_rate", "channels"):
        v = d[k]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"'{k}' must be a positive integer, got {v!r}")
    if d.get("split", "train") not in SPLITS:
        raise ValueError(f"'split' must be one of {', '.join(SPLITS)}, got {d['split']!r}")
    for k in ("description", "genre", "key", "midi", "source", "title", "piece"):
        if d.get(k) is not None and not isinstance(d[k], str):
            raise ValueError(f"'{k}' must be a string")
    inst = d.get("instruments", [])
    if not isinstance(inst, list) or not all(isinstance(x, str) for x in inst):
        raise ValueError("'instruments' must be a list of strings")
    bpm = d.get("bpm")
    if bpm is not None and (isinstance(bpm, bool) or not isinstance(bpm, int | float) or bpm <= 0):
        raise ValueError(f"'bpm' must be a positive number, got {bpm!r}")
    return ManifestItem(**d)


def read_manifest(path: str | os.PathLike) -> list[ManifestItem]:
    """Read and validate a manifest; relative paths resolve against its directory.

    Raises :class:`UserError` naming the file and line number of the first bad line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest not found: {path}")
    base = path.resolve().parent
    items = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                item = _check_item(json.loads(line))
            except (json.JSONDecodeError, ValueError, TypeError) as e:
                raise UserError(f"{path}:{lineno}: bad manifest line: {e}") from None
            item.path = str(base / item.path)
            if item.midi:
                item.midi = str(base / item.midi)
            items.append(item)
    return items


def write_manifest(path: str | os.PathLike, items: Iterable[ManifestItem]) -> None:
    """Write ``items`` atomically as JSON Lines, paths relative to the manifest's folder."""
    path = Path(path)
    base = path.resolve().parent
    lines = [item.to_json(base) for item in items]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
