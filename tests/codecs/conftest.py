"""Shared fixtures: peers built from configs with random weights (nothing downloaded)."""

from __future__ import annotations

import warnings

import pytest
import torch


def randomize_codebooks(model: torch.nn.Module, *, seed: int = 0, scale: float = 1.0) -> None:
    """Give a peer's (zero-initialised, k-means pending) codebooks random vectors."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("embed"):
                buf.copy_(torch.randn(buf.shape, generator=g) * scale)
            elif name.endswith("inited"):
                buf.fill_(1.0)


@pytest.fixture(autouse=True)
def _quiet_and_seeded():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        # torch.nn.utils.weight_norm (used by the encodec package) is deprecated.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield
