"""Checkpoint directories: atomic save, keep-last-N, ``latest`` resolution, exact resume.

Layout of ``OUT/checkpoints/step_000100/``::

    config.json                  the resolved recipe (model config included)
    model.safetensors            full model weights
    training_state.safetensors   tensors of the training state (optimizer moments, RNG)
    training_state.json          the rest: step, data position, scheduler, optimizer hparams

A checkpoint is written into a hidden temp directory (each file through
:func:`audiogen.fileio.atomic_path`, i.e. fsync'd) and renamed into place, so a step
directory that exists is complete; ``OUT/checkpoints/latest`` names the newest. Nothing is
unpickled: tensors come from safetensors, everything else from JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from audiogen.errors import UserError
from audiogen.fileio import atomic_path, atomic_write_text

CONFIG = "config.json"
MODEL = "model.safetensors"
STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"
FILES = (CONFIG, MODEL, STATE_TENSORS, STATE_JSON)
_STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class Checkpoint:
    """A loaded checkpoint: config, model weights and the nested training state."""

    path: Path
    config: dict
    model: dict[str, torch.Tensor]
    state: dict[str, Any]  # step, data, optimizer, scheduler, rng, ...


def checkpoints_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def flatten_state(obj: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split nested dict/list/tuple data into JSON-able structure plus named tensors.

    Tensors become ``{"__tensor__": name}``; dicts with non-string keys (optimizer
    ``state`` uses ints) become ``{"__items__": [[key, value], ...]}``; tuples
    ``{"__tuple__": [...]}``, so :func:`unflatten_state` restores the exact types.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, torch.Tensor):
            # clone: safetensors refuses tensors that share storage (tied weights, views)
            tensors[path] = x.detach().to("cpu", copy=True).contiguous()
            return {"__tensor__": path}
        if isinstance(x, dict):
            if all(isinstance(k, str) for k in x):
                return {k: walk(v, f"{path}.{k}") for k, v in x.items()}
            return {"__items__": [[k, walk(v, f"{path}.{k}")] for k, v in x.items()]}
        if isinstance(x, tuple):
            return {"__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(x)]
        if x is None or isinstance(x, bool | int | float | str):
            return x
        raise TypeError(f"cannot store {type(x).__name__} at {path} in a checkpoint")

    return walk(obj, "state"), tensors


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {k: unflatten_state(v, tensors) for k, v in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


def save_checkpoint(
    out_dir: str | Path,
    *,
    step: int,
    config: dict,
    model: dict[str, torch.Tensor],
    state: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write ``step_{step:06d}`` atomically, update ``latest``, delete all but the last N."""
    root = checkpoints_dir(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    for stale in root.glob(".tmp-step_*"):  # left by a process killed mid-save
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    tmp.mkdir()
    structure, tensors = flatten_state(state)
    with atomic_path(tmp / MODEL) as p:
        save_file({k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.items()}, p)
    with atomic_path(tmp / STATE_TENSORS) as p:
        save_file(tensors, p)
    atomic_write_text(tmp / STATE_JSON, json.dumps(structure))
    atomic_write_text(tmp / CONFIG, json.dumps(config, indent=2) + "\n")
    _fsync_dir(tmp)
    if final.exists():  # re-saving a step (e.g. the final one after a resume)
        old = root / f".old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        shutil.rmtree(old)
    os.replace(tmp, final)
    _fsync_dir(root)
    atomic_write_text(root / "latest", final.name + "\n")
    for stale in list_checkpoints(out_dir)[:-keep_last]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete checkpoint directories under ``out_dir/checkpoints``, oldest first."""
    root = checkpoints_dir(out_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from itself, a run directory (its latest), or ``checkpoints/``."""
    path = Path(path)
    if (path / MODEL).exists() or _STEP_DIR.match(path.name):
        return path
    root = path if path.name == "checkpoints" else checkpoints_dir(path)
    latest = root / "latest"
    if latest.is_file():
        named = root / latest.read_text(encoding="utf-8").strip()
        if named.is_dir():
            return named
    found = list_checkpoints(root.parent)
    if not found:
        raise UserError(f"no checkpoint found in {path}")
    return found[-1]


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint (directory, or a run directory meaning its latest).

    Any missing, truncated or corrupt file is a :class:`UserError` naming the file.
    """
    ckpt = resolve_checkpoint(path)
    for name in FILES:
        if not (ckpt / name).is_file():
            raise UserError(f"incomplete checkpoint: {ckpt / name} is missing")
    config = _read_json(ckpt / CONFIG)
    structure = _read_json(ckpt / STATE_JSON)
    model = _read_safetensors(ckpt / MODEL)
    tensors = _read_safetensors(ckpt / STATE_TENSORS)
    try:
        state = unflatten_state(structure, tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(
            f"corrupt checkpoint: {ckpt / STATE_JSON} does not match {ckpt / STATE_TENSORS} ({e})"
        ) from None
    return Checkpoint(path=ckpt, config=config, model=model, state=state)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"corrupt or truncated checkpoint file {path}: {e}") from None


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"corrupt or truncated checkpoint file {path}: {e}") from None
