"""LM checkpoints: a directory with ``config.json`` and ``model.safetensors`` (atomic)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from audiogen.errors import UserError
from audiogen.fileio import atomic_path, atomic_write_text

from .config import LMConfig
from .model import MusicLM

FORMAT = "audiogen-lm"


def save_lm(lm: MusicLM, directory: str | os.PathLike) -> Path:
    """Write ``config.json`` (``{"format", "lm": {...}}``) and ``model.safetensors``."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in lm.state_dict().items()}
    with atomic_path(d / "model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    config = {"format": FORMAT, "version": 1, "lm": lm.config.to_dict()}
    atomic_write_text(d / "config.json", json.dumps(config, indent=2) + "\n")
    return d


def load_lm_config(directory: str | os.PathLike) -> LMConfig:
    """Read the LM config from ``config.json`` (the ``"lm"`` section, or the whole file)."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise UserError(f"{path}: missing")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON ({e})") from e
    section = data.get("lm", data) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise UserError(f"{path}: no 'lm' section")
    section = {k: v for k, v in section.items() if k not in ("format", "version")}
    return LMConfig.from_dict(section)


def load_lm(
    directory: str | os.PathLike,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> MusicLM:
    """Load a checkpoint written by :func:`save_lm`; missing or corrupt files are UserErrors."""
    from safetensors.torch import load_file

    config = load_lm_config(directory)
    path = Path(directory) / "model.safetensors"
    if not path.is_file():
        raise UserError(f"{path}: missing")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises several types for a damaged file
        raise UserError(f"{path}: cannot read safetensors ({e})") from e
    lm = MusicLM(config=config)
    missing, unexpected = lm.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(
            f"{path}: tensors do not match the config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    lm.eval()
    return lm.to(device=device, dtype=dtype)
