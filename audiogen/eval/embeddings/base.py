"""The embedding-model interface every FAD backend implements, and safe weight loading.

An :class:`EmbeddingModel` turns mono or multi-channel audio at any rate into a sequence
of frame embeddings ``[N, D]``; FAD fits a Gaussian to the frames of a whole set.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audiogen import audio
from audiogen.errors import UserError


class WeightsError(UserError):
    """A backend's weights file is missing or unusable; the message names backend and file."""


class EmbeddingModel(nn.Module):
    """Audio ``[C, T]`` at any rate → frame embeddings ``[N, D]`` (float32, CPU numpy).

    Subclasses set ``name``, ``sample_rate`` (Hz the model runs at), ``channels`` (1 or 2)
    and ``dim``, and implement :meth:`forward` on ``[B, channels, T]`` batches (``T`` at
    ``sample_rate``) returning ``[B, F, D]``. ``version`` names the exact computation
    (architecture, post-processing, weights digest) and is stored with cached statistics.
    """

    name: str = "base"
    sample_rate: int = 16000
    channels: int = 1
    dim: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.weights_digest = "none"

    @property
    def version(self) -> str:
        return f"{self.name}-{self.weights_digest}"

    def describe(self) -> dict:
        """Facts for the report: what exactly is computed."""
        return {
            "name": self.name,
            "version": self.version,
            "sample_rate": self.sample_rate,
            "dim": self.dim,
        }

    def prepare(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``wav [C, T]`` at ``sample_rate`` → ``[channels, T']`` at the model's rate."""
        wav = audio.convert_channels(wav.float(), self.channels)
        return audio.resample(wav, sample_rate, self.sample_rate)

    @torch.inference_mode()
    def embed(self, wav: torch.Tensor, sample_rate: int) -> np.ndarray:
        """Frame embeddings ``[N, D]`` of one clip ``wav [C, T]`` at ``sample_rate`` Hz."""
        x = self.prepare(wav, sample_rate)
        device = next(iter(self.parameters()), torch.empty(0)).device
        out = self.forward(x[None].to(device))[0]
        return out.float().cpu().numpy()


def file_digest(path: str | os.PathLike) -> str:
    """Short content digest of a weights file, so stats from different weights never mix."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def load_state(
    backend: str, path: str | os.PathLike | None, wants: str, *, numpy_ok: bool = False
) -> dict[str, torch.Tensor]:
    """Read a state dict of tensors without running pickled code.

    ``.safetensors`` files are read with safetensors; anything else (the published
    ``.pth`` / ``.pt`` checkpoints) with ``torch.load(weights_only=True)``, which only
    rebuilds tensors and plain containers. ``numpy_ok`` additionally allows numpy arrays
    (torchvggish's PCA file stores them). ``wants`` describes the expected file in errors.
    """
    if path is None:
        raise WeightsError(f"{backend}: no weights given; pass --weights {wants}")
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{backend}: weights file not found: {p} (expected {wants})")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        elif numpy_ok:
            with torch.serialization.safe_globals(_numpy_globals()):
                state = torch.load(p, map_location="cpu", weights_only=True)
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # any reader failure is a bad file for the user
        raise WeightsError(f"{backend}: cannot read weights {p} ({type(e).__name__}: {e})") from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{backend}: {p} does not hold a state dict (expected {wants})")
    out = {}
    for k, v in state.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(np.array(v))
        if not isinstance(v, torch.Tensor):
            raise WeightsError(f"{backend}: {p}: entry {k!r} is not a tensor")
        out[str(k)] = v
    return out


def _numpy_globals() -> list:
    """The numpy reconstructors ``weights_only`` loading needs for plain float arrays."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    dtypes = [type(np.dtype(t)) for t in ("float32", "float64", "int64", "int32")]
    # Files pickled under numpy 1 name the reconstructor by its old module path.
    legacy = (_reconstruct, "numpy.core.multiarray._reconstruct")
    return [_reconstruct, legacy, np.ndarray, np.dtype, *dtypes]
