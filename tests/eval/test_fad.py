"""Fréchet distance against frechet-audio-distance; stats cache; FAD∞; per-item scores."""

from __future__ import annotations

import numpy as np
import pytest

from audiogen.errors import UserError
from audiogen.eval.fad import EmbeddingStats, fad_infinity, frechet_distance, per_item_scores
from tests.eval.peers import fad_reference


def _stats(rng, n: int, d: int, shift: float = 0.0):
    """Mean [d] and covariance [d, d] of n correlated samples; n < d gives a singular cov."""
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.1 + shift
    return x.mean(0), np.cov(x, rowvar=False)


def _check(d: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m1, s1 = _stats(rng, n, d)
    m2, s2 = _stats(rng, n, d, shift=0.05)
    ours = frechet_distance(m1, s1, m2, s2)
    ref = fad_reference()(m1, s1, m2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("n", [1280, 64], ids=["well-conditioned", "ill-conditioned"])
def test_matches_frechet_audio_distance_128d(n):
    _check(128, n, seed=n)


def _orthogonal(rng, d: int, reflections: int = 3):
    """A random orthogonal map ``Q`` (a permutation, then Householder reflections) as a
    function: ``x [D] -> Q x`` and ``m [D, D] -> Q m Q^T``, O(D^2) per reflection."""
    perm = rng.permutation(d)
    vs = [v / np.linalg.norm(v) for v in rng.standard_normal((reflections, d))]

    def apply(x: np.ndarray) -> np.ndarray:
        if x.ndim == 1:
            x = x[perm]
            for v in vs:
                x = x - 2 * (v @ x) * v
            return x
        x = x[perm][:, perm]
        for v in vs:
            xv = x @ v
            x = x - 2 * np.outer(v, xv) - 2 * np.outer(xv, v) + 4 * (v @ xv) * np.outer(v, v)
        return x

    return apply


@pytest.mark.parametrize("n", [1000, 64], ids=["well-conditioned", "ill-conditioned"])
def test_matches_frechet_audio_distance_2048d(n):
    """2048-d statistics built from 16 independent 128-d blocks, then mixed by one random
    orthogonal map so that every entry is dense. The Fréchet distance is invariant under an
    orthogonal change of basis and adds over independent blocks, so the peer's 2048-d value
    is the sum of its 16 block values (scipy's complex sqrtm takes ~1 min at 2048-d on one
    core, milliseconds at 128-d). n < 128 samples per block makes both covariances singular.
    """
    rng = np.random.default_rng(n)
    sets = [[_stats(rng, n, 128, shift=shift) for _ in range(16)] for shift in (0.0, 0.05)]
    peer = fad_reference()
    want = sum(peer(m1, s1, m2, s2) for (m1, s1), (m2, s2) in zip(*sets, strict=True))

    q = _orthogonal(rng, 2048)
    stats = []
    for blocks in sets:
        cov = np.zeros((2048, 2048))
        for k, (_, c) in enumerate(blocks):
            cov[k * 128 : (k + 1) * 128, k * 128 : (k + 1) * 128] = c
        stats += [q(np.concatenate([m for m, _ in blocks])), q(cov)]
    assert np.count_nonzero(np.abs(stats[1]) > 1e-12) > 0.9 * stats[1].size
    assert frechet_distance(*stats) == pytest.approx(want, rel=1e-6)


@pytest.mark.slow  # the peer's scipy sqrtm on 2048-d takes ~1 min per call on one core
def test_matches_frechet_audio_distance_2048d_direct():
    rng = np.random.default_rng(6000)
    m1, s1 = _stats(rng, 6000, 2048)
    m2, s2 = _stats(rng, 6000, 2048, shift=0.05)
    ours = frechet_distance(m1, s1, m2, s2)
    ref = fad_reference()(m1, s1, m2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)  # speed: benchmarks/bench_fad.py


def test_identical_is_zero_and_shift_adds_squared_norm(rng):
    m, s = _stats(rng, 500, 16)
    assert abs(frechet_distance(m, s, m, s)) < 1e-8
    assert frechet_distance(m, s, m + 0.5, s) == pytest.approx(16 * 0.25, rel=1e-9)


def test_mismatched_shapes_raise(rng):
    m, s = _stats(rng, 50, 8)
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(m, s, m[:4], s[:4, :4])


def test_stats_roundtrip_and_embedding_check(tmp_path, rng):
    emb = rng.standard_normal((100, 8))
    st = EmbeddingStats.from_embeddings(emb, embedding="mfcc", version="mfcc-v1")
    st.save(tmp_path / "ref.npz")
    back = EmbeddingStats.load(tmp_path / "ref.npz")
    assert back.count == 100 and back.embedding == "mfcc" and back.version == "mfcc-v1"
    np.testing.assert_array_equal(back.cov, st.cov)
    assert back.distance(st) == pytest.approx(0.0, abs=1e-9)
    other = EmbeddingStats.from_embeddings(emb, embedding="vggish", version="vggish-x")
    with pytest.raises(UserError, match="different embeddings"):
        back.distance(other)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="bad.npz"):
        EmbeddingStats.load(tmp_path / "bad.npz")


def test_fad_infinity_removes_the_small_n_bias(rng):
    d = 32
    ref = EmbeddingStats.from_embeddings(
        rng.standard_normal((20000, d)), embedding="x", version="x"
    )
    gen = rng.standard_normal((4000, d)) + 0.1
    inf = fad_infinity(ref, gen, min_n=100, steps=10)
    # True distance: ||0.1||^2 * d = 0.32. Finite-n FAD is biased upward by ~c/n, which
    # dominates at this size; the extrapolation removes it (the 4000-sample mean itself
    # is still off by ~0.02).
    assert inf.scores[0] > 0.5
    assert inf.value == pytest.approx(0.32, abs=0.06)
    assert inf.slope > 0 and inf.r2 > 0.9


def test_per_item_ranks_the_odd_item_last(rng):
    ref = EmbeddingStats.from_embeddings(rng.standard_normal((2000, 4)), embedding="x", version="x")
    items = [rng.standard_normal((50, 4)), rng.standard_normal((50, 4)) + 2.0, np.zeros((1, 4))]
    scores = per_item_scores(ref, items)
    assert scores[1] > scores[0] and np.isnan(scores[2])
