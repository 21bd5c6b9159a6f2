"""Shared helpers: peers built from configs with random weights (nothing downloaded)."""

from __future__ import annotations

import warnings

import pytest
import torch


def _randomize_codebooks(model: torch.nn.Module, *, scale: float, seed: int = 0) -> None:
    """Fill a peer's codebooks (zeros until k-means runs) with random vectors.

    ``scale`` should be near the latent's standard deviation so that many different codes
    are chosen and the parity test exercises the nearest-neighbour search.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith(".embed"):
                buf.copy_(torch.randn(buf.shape, generator=g) * scale)
            elif name.endswith(".inited"):
                buf.fill_(1.0)


@pytest.fixture
def randomize_codebooks():
    """The codebook randomiser, as a fixture (test modules cannot import conftest)."""
    return _randomize_codebooks


@pytest.fixture(autouse=True)
def _quiet_and_seeded():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        # torch.nn.utils.weight_norm (used by the encodec package) is deprecated.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield
