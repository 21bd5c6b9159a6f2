"""Fréchet distance between Gaussian fits of embeddings: FAD, FAD∞ and per-item scores.

Statistics are float64 ``mean [D]`` and ``cov [D, D]`` (unbiased, ``N - 1``), as in
pytorch-fid, frechet-audio-distance and fadtk, so scores compare across those tools. The
matrix square root goes through two symmetric eigendecompositions instead of a complex
``scipy.linalg.sqrtm``: it is several times faster and stays real on rank-deficient
covariances (fewer embeddings than dimensions).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiogen.errors import UserError
from audiogen.fileio import atomic_write_bytes

STATS_FORMAT = "audiogen-fad-stats/1"


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix [D, D]; tiny negative eigenvalues clip to 0."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``Tr sqrt(sigma1 @ sigma2)`` for symmetric PSD ``sigma1, sigma2`` [D, D].

    ``sigma1 sigma2`` is similar to a symmetric PSD matrix, so its eigenvalues are real and
    non-negative and the trace of the square root is the sum of their square roots. With a
    Cholesky factor ``sigma1 = L L^T`` that matrix is ``L^T sigma2 L`` (one cheap
    factorisation and one eigenvalue-only solve); when ``sigma1`` is singular (fewer
    embeddings than dimensions) the symmetric square root ``s sigma2 s`` is used instead.
    """
    try:
        lower = np.linalg.cholesky(sigma1)
        m = lower.T @ sigma2 @ lower
    except np.linalg.LinAlgError:
        s = _sqrt_psd(sigma1)
        m = s @ sigma2 @ s
    m = (m + m.T) * 0.5  # remove round-off asymmetry before eigvalsh
    ev = np.linalg.eigvalsh(m)
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum())


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr sqrt(sigma1 sigma2)``; means ``[D]``,
    covariances ``[D, D]``. Computed in float64.
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}"
        )
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))


@dataclass
class EmbeddingStats:
    """Gaussian fit of a set of embeddings: ``mean [D]``, ``cov [D, D]`` (float64).

    ``embedding`` and ``version`` name the model that produced them (see
    :attr:`audiogen.eval.embeddings.EmbeddingModel.version`); distances between stats of
    different embeddings are refused.
    """

    mean: np.ndarray
    cov: np.ndarray
    count: int
    embedding: str
    version: str
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_embeddings(cls, emb: np.ndarray, *, embedding: str, version: str) -> EmbeddingStats:
        """Fit ``emb [N, D]``; needs N >= 2."""
        emb = np.asarray(emb, np.float64)
        if emb.ndim != 2 or emb.shape[0] < 2:
            raise UserError(
                f"{embedding}: need at least 2 embedding frames to fit statistics, "
                f"got {emb.shape[0] if emb.ndim == 2 else 0}"
            )
        mean = emb.mean(axis=0)
        centred = emb - mean
        return cls(
            mean=mean,
            cov=(centred.T @ centred) / (emb.shape[0] - 1),  # np.cov's value, one BLAS call
            count=int(emb.shape[0]),
            embedding=embedding,
            version=version,
        )

    def distance(self, other: EmbeddingStats) -> float:
        """Fréchet distance to ``other``; both must come from the same embedding."""
        if (self.embedding, self.version) != (other.embedding, other.version):
            raise UserError(
                f"statistics come from different embeddings: {self.embedding} ({self.version}) "
                f"vs {other.embedding} ({other.version})"
            )
        return frechet_distance(self.mean, self.cov, other.mean, other.cov)

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` atomically (no pickled objects)."""
        buf = io.BytesIO()
        np.savez(
            buf,
            format=np.array(STATS_FORMAT),
            mean=self.mean,
            cov=self.cov,
            count=np.array(self.count),
            embedding=np.array(self.embedding),
            version=np.array(self.version),
        )
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> EmbeddingStats:
        """Read stats written by :meth:`save`; raises UserError naming the file if unusable."""
        p = Path(path)
        if not p.is_file():
            raise UserError(f"statistics file not found: {p}")
        try:
            with np.load(p, allow_pickle=False) as z:
                if str(z["format"]) != STATS_FORMAT:
                    raise ValueError(f"format {z['format']!s}, expected {STATS_FORMAT}")
                stats = cls(
                    mean=z["mean"].astype(np.float64),
                    cov=z["cov"].astype(np.float64),
                    count=int(z["count"]),
                    embedding=str(z["embedding"]),
                    version=str(z["version"]),
                )
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f"{p}: not an audiogen statistics file ({e})") from None
        d = stats.mean.shape[0]
        if stats.cov.shape != (d, d):
            raise UserError(f"{p}: mean {stats.mean.shape} and cov {stats.cov.shape} disagree")
        return stats


@dataclass
class FadInfinity:
    """FAD∞: the intercept of FAD against 1/N fitted over subsets of N generated embeddings.

    ``ns`` and ``scores`` are the fitted points; ``slope`` is d FAD / d(1/N); ``r2`` the fit
    quality.
    """

    value: float
    slope: float
    r2: float
    ns: list[int]
    scores: list[float]


def fad_infinity(
    reference: EmbeddingStats,
    generated: np.ndarray,
    *,
    min_n: int = 500,
    steps: int = 15,
    seed: int = 0,
) -> FadInfinity:
    """Extrapolate FAD to infinitely many samples (fadtk's FAD∞).

    ``generated [N, D]`` is subsampled without replacement at ``steps`` sizes from ``min_n``
    (clipped to N // 2) to N; FAD of each subset is regressed linearly on 1/n.
    """
    gen = np.asarray(generated, np.float64)
    n_total = gen.shape[0]
    if n_total < 4:
        raise UserError(f"FAD∞ needs at least 4 generated embedding frames, got {n_total}")
    lo = max(2, min(min_n, n_total // 2))
    ns = sorted({int(n) for n in np.linspace(lo, n_total, steps)})
    rng = np.random.default_rng(seed)
    scores = []
    for n in ns:
        idx = rng.choice(n_total, size=n, replace=False)
        sub = gen[idx]
        scores.append(
            frechet_distance(reference.mean, reference.cov, sub.mean(0), np.cov(sub, rowvar=False))
        )
    x = 1.0 / np.asarray(ns, np.float64)
    y = np.asarray(scores)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - float((resid**2).sum() / total) if total > 0 else 1.0
    return FadInfinity(float(intercept), float(slope), r2, ns, [float(s) for s in scores])


def per_item_scores(reference: EmbeddingStats, items: list[np.ndarray]) -> list[float]:
    """FAD of each item's own frames ``[n_i, D]`` against the reference (fadtk's per-song).

    Items with fewer than 2 frames get NaN. Use these to rank items, not as a set score:
    a few frames give a rank-deficient covariance and a large absolute value.
    """
    out = []
    for emb in items:
        emb = np.asarray(emb, np.float64)
        if emb.shape[0] < 2:
            out.append(float("nan"))
            continue
        out.append(
            frechet_distance(reference.mean, reference.cov, emb.mean(0), np.cov(emb, rowvar=False))
        )
    return out
