"""Index the Free Music Archive (FMA) dataset.

Layout: ``ROOT/fma_metadata/tracks.csv`` (FMA's three-row header: column group such as
``track`` / ``album`` / ``artist`` / ``set``, then the column name, then the index name
``track_id``), optionally ``ROOT/fma_metadata/genres.csv``, and audio as
``ROOT/fma_{small,medium,large,full}/NNN/NNNNNN.mp3`` (track id zero-padded to six digits,
folder = its first three). Splits come from FMA's own ``set.split`` column.
"""

from __future__ import annotations

import ast
import csv
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from audiogen.data.report import Candidate, IndexReport, index_candidates
from audiogen.data.splits import hash_split
from audiogen.errors import UserError

_SPLITS = {"training": "train", "validation": "valid", "test": "test"}
_COLUMNS = (
    "set.split",
    "track.genre_top",
    "track.genres",
    "track.tags",
    "track.title",
    "artist.name",
    "album.title",
)


@dataclass
class FmaTrack:
    """The metadata of one FMA track that captions and splits use."""

    track_id: int
    split: str | None = None
    genre_top: str | None = None
    genres: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    title: str | None = None
    artist: str | None = None
    album: str | None = None


def read_genres(path: Path) -> dict[int, str]:
    """``genres.csv`` (genre_id, #tracks, parent, title, top_level) → {genre_id: title}."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"genre_id", "title"} <= set(reader.fieldnames):
            raise UserError(f"{path}: expected FMA genres.csv columns genre_id and title")
        return {int(r["genre_id"]): r["title"] for r in reader if r["genre_id"].strip()}


def read_tracks(path: Path, genres: dict[int, str] | None = None) -> dict[int, FmaTrack]:
    """Parse FMA's ``tracks.csv`` with its three-row header into {track_id: FmaTrack}."""
    # Artist bios hold huge quoted multi-line fields.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    genres = genres or {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            groups, names, index = next(reader), next(reader), next(reader)
        except StopIteration:
            raise UserError(f"{path}: too short for FMA's three-row header") from None
        if not index or index[0] != "track_id" or len(groups) != len(names):
            raise UserError(
                f"{path}: not FMA's tracks.csv format (expected a three-row header whose "
                "third row starts with 'track_id')"
            )
        # The first header row names a group only where it starts; carry it to the right.
        keys, group = [], ""
        for g, n in zip(groups, names, strict=True):
            group = g or group
            keys.append(f"{group}.{n}")
        col = {k: keys.index(k) for k in _COLUMNS if k in keys}
        if "set.split" not in col:
            raise UserError(f"{path}: no set.split column; is this FMA's tracks.csv?")
        tracks = {}
        for lineno, row in enumerate(reader, start=4):
            if not row or not row[0].strip():
                continue
            try:
                tid = int(row[0])
            except ValueError:
                raise UserError(f"{path}:{lineno}: track_id {row[0]!r} is not an integer") from None

            def get(key: str, row: list[str] = row) -> str | None:
                i = col.get(key)
                v = row[i].strip() if i is not None and i < len(row) else ""
                return v or None

            genre_ids = _literal_list(get("track.genres"))
            tracks[tid] = FmaTrack(
                track_id=tid,
                split=_SPLITS.get(get("set.split") or ""),
                genre_top=get("track.genre_top"),
                genres=[genres[int(g)] for g in genre_ids if _is_int(g) and int(g) in genres],
                tags=[str(t) for t in _literal_list(get("track.tags"))],
                title=get("track.title"),
                artist=get("artist.name"),
                album=get("album.title"),
            )
    return tracks


def caption(t: FmaTrack) -> str:
    """A caption from genre, sub-genres, title, artist and tags."""
    genre = t.genre_top or (t.genres[0] if t.genres else None)
    head = f"{genre} track" if genre else "a track"
    if t.title:
        head += f' "{t.title}"'
    if t.artist:
        head += f" by {t.artist}"
    parts = [head]
    others = [g for g in t.genres if g != genre]
    if others:
        parts.append("with elements of " + ", ".join(others))
    if t.tags:
        parts.append("tagged " + ", ".join(t.tags[:8]))
    return "; ".join(parts)


def index_fma(
    root: str | os.PathLike,
    *,
    min_duration: float = 1.0,
    progress: bool = True,
) -> IndexReport:
    """Index FMA audio under ``root`` with captions and splits from its metadata."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--fma: not a directory: {root}")
    meta = root / "fma_metadata"
    genres = read_genres(meta / "genres.csv") if (meta / "genres.csv").is_file() else {}
    tracks = read_tracks(meta / "tracks.csv", genres) if (meta / "tracks.csv").is_file() else {}
    files = sorted(root.glob("fma_*/[0-9][0-9][0-9]/*.mp3"))
    if not files:
        raise UserError(f"{root}: no FMA audio found (expected fma_*/NNN/NNNNNN.mp3)")
    candidates = []
    for path in files:
        tid = int(path.stem) if path.stem.isdigit() else None
        t = tracks.get(tid) if tid is not None else None
        fields: dict = {"split": hash_split(path.stem)}
        if t is not None:
            genre = t.genre_top or (t.genres[0] if t.genres else None)
            fields.update(description=caption(t), genre=genre, title=t.title)
            if t.split:
                fields["split"] = t.split
        candidates.append(Candidate(path, fields))
    return index_candidates(candidates, source="fma", min_duration=min_duration, progress=progress)


def _literal_list(s: str | None) -> list:
    # FMA stores lists as Python reprs: "[21, 76]", "['indie', 'lo-fi']".
    if not s:
        return []
    try:
        v = ast.literal_eval(s)
    except (ValueError, SyntaxError):
        return []
    return list(v) if isinstance(v, list | tuple) else []


def _is_int(x: object) -> bool:
    try:
        int(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
