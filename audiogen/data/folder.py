"""Index any folder of audio; captions come from a sidecar ``.txt`` or ``.json`` per file.

A sidecar shares the audio file's stem (``song.flac`` + ``song.txt`` / ``song.json``). The
JSON may hold ``description`` (or ``caption`` / ``text``) and any of ``genre``,
``instruments``, ``bpm``, ``key``, ``title``. Splits come from a ``train``/``valid``/``test``
folder on the path when there is one, else from a hash of the relative path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from audiogen.audio import READ_SUFFIXES
from audiogen.data.report import Candidate, IndexReport, index_candidates
from audiogen.data.splits import hash_split
from audiogen.errors import UserError

_SPLIT_DIRS = {"train": "train", "valid": "valid", "validation": "valid", "test": "test"}
_CAPTION_KEYS = ("description", "caption", "text")
_META_KEYS = ("genre", "instruments", "bpm", "key", "title")


def index_folder(
    root: str | os.PathLike,
    *,
    min_duration: float = 1.0,
    seed: int = 0,
    valid: float = 0.05,
    test: float = 0.05,
    progress: bool = True,
) -> IndexReport:
    """Index every audio file under ``root`` (recursively, hidden files ignored)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--folder: not a directory: {root}")
    candidates = []
    bad_sidecars: list[tuple[Path, str]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if not path.is_file() or path.suffix.lower() not in READ_SUFFIXES:
            continue
        try:
            fields = read_sidecar(path)
        except ValueError as e:
            bad_sidecars.append((path, str(e)))
            fields = {}
        split = next(
            (_SPLIT_DIRS[p.lower()] for p in rel.parts[:-1] if p.lower() in _SPLIT_DIRS), None
        )
        fields["split"] = split or hash_split(rel.as_posix(), seed=seed, valid=valid, test=test)
        candidates.append(Candidate(path, fields))
    report = index_candidates(
        candidates, source="folder", min_duration=min_duration, progress=progress
    )
    # A broken sidecar does not lose the audio; it is listed so the user can fix the caption.
    for path, reason in bad_sidecars:
        report.skip(path, f"sidecar ignored: {reason}")
    return report


def read_sidecar(audio_path: Path) -> dict:
    """Manifest fields from ``audio_path``'s sidecar; {} when it has none.

    Raises ValueError for a sidecar that exists but cannot be parsed.
    """
    js = audio_path.with_suffix(".json")
    txt = audio_path.with_suffix(".txt")
    if js.is_file():
        try:
            data = json.loads(js.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{js.name}: invalid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{js.name}: expected a JSON object")
        fields: dict = {}
        caption = next((data[k] for k in _CAPTION_KEYS if isinstance(data.get(k), str)), None)
        if caption:
            fields["description"] = caption.strip()
        for k in _META_KEYS:
            if data.get(k) is not None:
                fields[k] = data[k]
        if isinstance(fields.get("instruments"), str):
            fields["instruments"] = [fields["instruments"]]
        if "bpm" in fields and not isinstance(fields["bpm"], int | float):
            fields.pop("bpm")
        return fields
    if txt.is_file():
        try:
            text = txt.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError as e:
            raise ValueError(f"{txt.name}: not UTF-8 text ({e})") from None
        return {"description": " ".join(text.split())} if text else {}
    return {}
