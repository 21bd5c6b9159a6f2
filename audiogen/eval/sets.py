"""Sets of audio files to evaluate: find them (folder or manifest), embed them, and keep
going past files that cannot be read (they are listed in the report, not fatal)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audiogen import audio
from audiogen.errors import UserError
from audiogen.eval.embeddings.base import EmbeddingModel


@dataclass
class Failure:
    """A file that was skipped, with the reason."""

    path: str
    reason: str


@dataclass
class EmbeddedSet:
    """Per-file frame embeddings ``items[i]: [n_i, D]`` for ``paths[i]``, plus skipped files."""

    paths: list[str]
    items: list[np.ndarray]
    failed: list[Failure] = field(default_factory=list)

    def stacked(self) -> np.ndarray:
        """All frames ``[N, D]`` (N = sum of n_i)."""
        if not self.items:
            return np.zeros((0, 0), np.float32)
        return np.concatenate(self.items, axis=0)


def is_manifest(path: Path) -> bool:
    return path.is_file() and path.suffix in (".jsonl", ".json")


def list_audio(source: str | os.PathLike) -> list[Path]:
    """Audio files of ``source``: a folder (searched recursively) or a JSONL manifest.

    Manifests are read with :func:`audiogen.data.manifest.read_manifest` when every line
    is a full item, else only the ``path`` field of each line is used (relative paths are
    against the manifest's folder). Raises UserError when nothing is found.
    """
    src = Path(source)
    if src.is_dir():
        files = sorted(
            p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in audio.READ_SUFFIXES
        )
        if not files:
            raise UserError(f"{src}: no audio files ({', '.join(audio.READ_SUFFIXES)})")
        return files
    if is_manifest(src):
        return _manifest_paths(src)
    raise UserError(f"{src}: not a folder or a .jsonl manifest")


def _manifest_paths(path: Path) -> list[Path]:
    try:
        from audiogen.data.manifest import read_manifest

        return [Path(item.path) for item in read_manifest(path)]
    except (ImportError, UserError):
        pass  # fall back to the minimal form: one JSON object with "path" per line
    base = path.resolve().parent
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rel = json.loads(line)["path"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserError(f"{path}:{lineno}: expected a JSON object with a 'path'") from None
            out.append(base / rel)
    if not out:
        raise UserError(f"{path}: manifest lists no files")
    return out


def embed_files(
    paths: list[Path], model: EmbeddingModel, *, desc: str = "embedding", progress: bool = True
) -> EmbeddedSet:
    """Embed each file with ``model``; unreadable or too-short files become failures."""
    result = EmbeddedSet(paths=[], items=[])
    for p in tqdm(paths, desc=desc, unit="file", disable=not progress, leave=False):
        try:
            wav, sr = audio.load(p)
        except UserError as e:  # AudioError: missing, corrupt, empty, non-finite
            result.failed.append(Failure(str(p), str(e)))
            continue
        emb = model.embed(wav, sr)
        if emb.shape[0] == 0:
            result.failed.append(Failure(str(p), f"too short for {model.name} (no frames)"))
            continue
        result.paths.append(str(p))
        result.items.append(emb)
    return result
