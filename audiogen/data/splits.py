"""Deterministic train/valid/test assignment by hashing a stable key.

Hashing (rather than shuffling a list) means a piece's split depends only on its key and
the seed: adding, removing or limiting other pieces never moves it to another split.
"""

from __future__ import annotations

import hashlib


def unit_hash(*parts: object) -> float:
    """A stable float in [0, 1) from ``parts`` (same on every machine and Python run)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def hash_split(key: str, *, seed: int = 0, valid: float = 0.05, test: float = 0.05) -> str:
    """Return 'train', 'valid' or 'test' for ``key``; fractions are of all keys."""
    if valid < 0 or test < 0 or valid + test > 1:
        raise ValueError(f"bad split fractions valid={valid} test={test}")
    u = unit_hash("split", seed, key)
    if u < test:
        return "test"
    if u < test + valid:
        return "valid"
    return "train"


def seed_for(*parts: object) -> int:
    """A 63-bit integer seed derived from ``parts``, for per-item RNGs."""
    return int(unit_hash("seed", *parts) * 2**63)
