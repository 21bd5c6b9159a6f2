"""Small audio sets and a random-weight VGGish weights file for the eval tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiogen import audio


def _tones(rng, n: int, seconds: float, sr: int) -> list[torch.Tensor]:
    """Harmonic tones with random pitch and a little noise: ``[1, T]`` each."""
    t = torch.arange(int(seconds * sr)) / sr
    out = []
    for _ in range(n):
        f0 = float(rng.uniform(150, 600))
        wav = sum(0.3 / k * torch.sin(2 * torch.pi * f0 * k * t) for k in (1, 2, 3))
        wav = wav + 0.01 * torch.from_numpy(rng.standard_normal(t.shape[0])).float()
        out.append(wav[None].float())
    return out


@pytest.fixture(scope="module")
def tone_set(tmp_path_factory):
    """A folder of 6 two-second tones at 16 kHz; returns (folder, list of [1, T] tensors)."""
    d = tmp_path_factory.mktemp("tones")
    wavs = _tones(np.random.default_rng(0), 6, 2.0, 16000)
    for i, w in enumerate(wavs):
        audio.save(d / f"tone{i}.wav", w, 16000)
    return d, wavs


@pytest.fixture(scope="module")
def vggish_weights(tmp_path_factory):
    """A seeded random VGGish state dict saved as .safetensors (published key names)."""
    from safetensors.torch import save_file

    from audiogen.eval.embeddings.vggish import VGGish

    torch.manual_seed(0)
    m = VGGish()
    state = {k: v for k, v in m.state_dict().items() if not k.startswith("pca_")}
    path = tmp_path_factory.mktemp("weights") / "vggish.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
