"""VGGish port against torchvggish: the log-mel front end and the network, same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiogen.eval.embeddings import WeightsError, build_embedding
from audiogen.eval.embeddings.vggish import VGGish
from tests.eval.peers import torchvggish


def _peer(postprocess: bool = False):
    """torchvggish's VGG with seeded random weights (its constructors would download)."""
    tv = torchvggish()
    from torchvggish.torchvggish import VGG, Postprocessor, make_layers

    torch.manual_seed(0)
    peer = VGG(make_layers(), postprocess=False).eval()
    pca = None
    if postprocess:
        g = torch.Generator().manual_seed(1)
        vec = torch.linalg.qr(torch.randn(128, 128, generator=g))[0] * 40.0
        mean = torch.randn(128, generator=g) * 0.01
        pca = {"pca_eigen_vectors": vec, "pca_means": mean}
        proc = Postprocessor.__new__(Postprocessor)  # skip its download in __init__
        proc._pca_matrix = vec.float()
        proc._pca_means = mean.reshape(-1, 1).float()
        peer.pproc, peer.postprocess = proc, True
    return tv, peer, pca


@pytest.fixture(scope="module")
def noise():
    return (np.random.default_rng(0).standard_normal(16000 * 3) * 0.1).astype(np.float32)


def test_frontend_matches_torchvggish(noise):
    tv, _, _ = _peer()
    ref = tv.vggish_input.waveform_to_examples(noise.astype(np.float64), 16000).detach()
    ours = VGGish().frontend(torch.from_numpy(noise)[None])[0]
    assert ours.shape == ref.shape == (3, 1, 96, 64)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("postprocess", [False, True], ids=["raw", "pca"])
def test_network_matches_torchvggish(noise, postprocess):
    tv, peer, pca = _peer(postprocess)
    ours = VGGish(activation=True, pca=postprocess).eval()
    ours.load_state_dict(peer.state_dict(), strict=False)
    if pca:
        ours.load_pca(pca)
    examples = tv.vggish_input.waveform_to_examples(noise.astype(np.float64), 16000).detach()
    with torch.no_grad():
        ref = peer(examples)
        got = ours(torch.from_numpy(noise)[None, None])[0]
    assert got.shape == (3, 128)
    if postprocess:  # quantised to integers 0..255: allow a rare one-step rounding flip
        assert (got - ref).abs().max() <= 1.0 and (got == ref).float().mean() > 0.99
        assert ref.std() > 1.0  # the PCA spread values over the quantiser's range
    else:
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


def test_weights_file_roundtrip_and_errors(tmp_path, noise):
    _, peer, pca = _peer(postprocess=True)
    torch.save(peer.state_dict(), tmp_path / "vggish.pth")
    torch.save({k: v.numpy() for k, v in pca.items()}, tmp_path / "pca.pth")  # numpy, as published
    model = build_embedding("vggish", weights=tmp_path / "vggish.pth", pca=True,
                            pca_file=tmp_path / "pca.pth", activation=True)  # fmt: skip
    assert model.has_pca and model.version.startswith("vggish-pca-q8-")
    assert model.describe()["postprocessing"].startswith("PCA")
    emb = model.embed(torch.from_numpy(noise)[None], 16000)
    assert emb.shape == (3, 128)
    with pytest.raises(WeightsError, match="vggish: weights file not found: .*missing.pth"):
        build_embedding("vggish", weights=tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="--pca needs"):
        build_embedding("vggish", weights=tmp_path / "vggish.pth", pca=True)
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="does not match the VGGish architecture"):
        build_embedding("vggish", weights=tmp_path / "other.pth")


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"features.0.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="cannot read weights"):
        build_embedding("vggish", weights=tmp_path / "evil.pth")
