"""VGGish (Hershey et al. 2017) as ported by torchvggish, with its exact log-mel front end.

Front end: 16 kHz mono → 25 ms periodic-Hann frames every 10 ms → |rfft(512)| → 64 HTK mel
bands 125-7500 Hz (DC bin zeroed) → ``log(mel + 0.01)`` → non-overlapping 0.96 s examples
of ``[96, 64]``. Model: 4 VGG conv blocks → 3 fully connected layers → 128-d per example.

Two switches decide which number you get, and the report states both:

- ``activation``: keep the ReLU after the last layer. torchvggish keeps it; the current
  TensorFlow VGGish and frechet-audio-distance's default drop it. Default: dropped.
- ``pca``: torchvggish's post-processor (PCA + whitening, clip to ±2, 8-bit quantisation),
  as in the released AudioSet embeddings. Default: off, as in frechet-audio-distance.

Weights: the published ``vggish-10086976.pth`` state dict (or a ``.safetensors`` with the
same keys); PCA parameters from ``vggish_pca_params-970ea276.pth`` or from ``pca_*`` keys
in the weights file.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import nn

from audiogen.eval.embeddings.base import EmbeddingModel, WeightsError, file_digest, load_state

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
N_FFT = 512  # next power of two above WINDOW
N_MELS = 64
EXAMPLE_FRAMES = 96  # 0.96 s of 10 ms frames, no overlap between examples
LOG_OFFSET = 0.01
WANTS = "vggish-10086976.pth (torchvggish) or a .safetensors with the same keys"


def _htk_mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(hz / 700.0)


def vggish_mel_matrix(
    *, n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """VGGish's triangular HTK mel filters ``[n_fft // 2 + 1, n_mels]`` over 125-7500 Hz.

    Triangles are linear in mel (not Hz) and the DC bin gets no weight, as in HTK.
    """
    bins_mel = _htk_mel(np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1))
    edges = np.linspace(_htk_mel(np.float64(125.0)), _htk_mel(np.float64(7500.0)), n_mels + 2)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    rise = (bins_mel[:, None] - lo) / (mid - lo)
    fall = (hi - bins_mel[:, None]) / (hi - mid)
    m = np.maximum(0.0, np.minimum(rise, fall))
    m[0] = 0.0
    return m


class VGGishFrontEnd(nn.Module):
    """Mono 16 kHz audio ``[B, T]`` → log-mel examples ``[B, E, 1, 96, 64]``.

    A clip shorter than one example (0.96 s + a window) yields ``E = 0``; trailing
    samples that do not fill a whole example are dropped, as torchvggish does.
    """

    def __init__(self) -> None:
        super().__init__()
        n = torch.arange(WINDOW, dtype=torch.float64)
        self.register_buffer("window", 0.5 - 0.5 * torch.cos(2 * math.pi * n / WINDOW), False)
        self.register_buffer("mel", torch.from_numpy(vggish_mel_matrix()), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        # float64 like the numpy reference: log(mel + 0.01) amplifies float32 round-off.
        x = wav.double()
        if x.shape[-1] < WINDOW:
            return x.new_zeros(x.shape[0], 0, 1, EXAMPLE_FRAMES, N_MELS).float()
        frames = x.unfold(-1, WINDOW, HOP) * self.window  # [B, F, 400], no padding
        mag = torch.fft.rfft(frames, n=N_FFT).abs()  # [B, F, 257]
        logmel = torch.log(mag @ self.mel + LOG_OFFSET)  # [B, F, 64]
        e = logmel.shape[1] // EXAMPLE_FRAMES
        ex = logmel[:, : e * EXAMPLE_FRAMES].reshape(x.shape[0], e, 1, EXAMPLE_FRAMES, N_MELS)
        return ex.float()


def _vgg_features() -> nn.Sequential:
    """Conv stack with torchvggish's module indices (so state-dict keys match)."""
    layers: list[nn.Module] = []
    c_in = 1
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c_in = v
    return nn.Sequential(*layers)


class VGGish(EmbeddingModel):
    """VGGish embeddings: audio ``[B, 1, T]`` at 16 kHz → ``[B, E, 128]``, one per 0.96 s.

    Args:
        activation: keep the final ReLU (torchvggish) or not (TF VGGish, default).
        pca: apply the PCA/whitening + 8-bit quantisation post-processor; needs the PCA
            buffers (``load_pca``).
        batch_size: examples per forward pass.
    """

    name = "vggish"
    sample_rate = SAMPLE_RATE
    channels = 1
    dim = 128

    def __init__(self, *, activation: bool = False, pca: bool = False, batch_size: int = 64):
        super().__init__()
        self.activation = activation
        self.pca = pca
        self.batch_size = batch_size
        self.frontend = VGGishFrontEnd()
        self.features = _vgg_features()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(True),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Linear(4096, 128),
            nn.ReLU(True),
        )
        # PCA: y = E (x - m); filled by load_pca (torchvggish's published parameters).
        self.register_buffer("pca_eigen_vectors", torch.zeros(128, 128))
        self.register_buffer("pca_means", torch.zeros(128))
        self.has_pca = False

    @property
    def version(self) -> str:
        post = "pca-q8" if self.pca else ("relu" if self.activation else "linear")
        return f"vggish-{post}-{self.weights_digest}"

    def describe(self) -> dict:
        return {
            **super().describe(),
            "frontend": "torchvggish log-mel (16 kHz, 25/10 ms, 64 HTK mels 125-7500 Hz)",
            "final_relu": self.activation,
            "postprocessing": "PCA + whitening + clip ±2 + 8-bit quantisation"
            if self.pca
            else "none (raw 128-d embedding layer)",
        }

    def embed_examples(self, examples: torch.Tensor) -> torch.Tensor:
        """Log-mel examples ``[E, 1, 96, 64]`` → embeddings ``[E, 128]``."""
        x = self.features(examples)  # [E, 512, 6, 4]
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # TF's NHWC flatten order
        layers = self.embeddings if self.activation else self.embeddings[:-1]
        x = layers(x)
        if self.pca:
            x = self.postprocess(x)
        return x

    def postprocess(self, emb: torch.Tensor) -> torch.Tensor:
        """torchvggish's post-processor on ``[E, 128]``: PCA, clip to ±2, quantise to 0..255."""
        if not self.has_pca:
            raise WeightsError("vggish: PCA post-processing requested but no PCA parameters loaded")
        y = (emb - self.pca_means) @ self.pca_eigen_vectors.T
        return torch.round((y.clamp(-2.0, 2.0) + 2.0) * (255.0 / 4.0))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav [B, 1, T]`` at 16 kHz → ``[B, E, 128]``."""
        ex = self.frontend(wav[:, 0])  # [B, E, 1, 96, 64]
        b, e = ex.shape[:2]
        flat = ex.reshape(b * e, 1, EXAMPLE_FRAMES, N_MELS)
        outs = [self.embed_examples(c) for c in flat.split(self.batch_size)] or [
            flat.new_zeros(0, self.dim)
        ]
        return torch.cat(outs).reshape(b, e, self.dim)

    # Weights ----------------------------------------------------------------------------

    def load_pca(self, state: dict[str, torch.Tensor]) -> None:
        """Take ``pca_eigen_vectors [128, 128]`` and ``pca_means [128]`` from ``state``."""
        vec, mean = state["pca_eigen_vectors"], state["pca_means"]
        self.pca_eigen_vectors.copy_(vec.float().reshape(128, 128))
        self.pca_means.copy_(mean.float().reshape(128))
        self.has_pca = True

    @classmethod
    def from_files(
        cls,
        weights: str | os.PathLike | None,
        *,
        pca_file: str | os.PathLike | None = None,
        activation: bool = False,
        pca: bool = False,
    ) -> VGGish:
        """Build from local files (nothing is downloaded); see the module docstring."""
        state = load_state("vggish", weights, WANTS, numpy_ok=True)
        model = cls(activation=activation, pca=pca)
        model_keys = {
            k: v for k, v in state.items() if k.split(".")[0] in ("features", "embeddings")
        }
        missing, unexpected = model.load_state_dict(model_keys, strict=False)
        missing = [k for k in missing if not k.startswith("pca_")]
        if missing or unexpected:
            raise WeightsError(
                f"vggish: {weights} does not match the VGGish architecture "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]}); expected {WANTS}"
            )
        if "pca_eigen_vectors" in state:
            model.load_pca(state)
        if pca_file is not None:
            wants = "vggish_pca_params-970ea276.pth (pca_eigen_vectors, pca_means)"
            pstate = load_state("vggish PCA", pca_file, wants, numpy_ok=True)
            if "pca_eigen_vectors" not in pstate or "pca_means" not in pstate:
                raise WeightsError(f"vggish PCA: {pca_file} lacks pca_eigen_vectors/pca_means")
            model.load_pca(pstate)
        if pca and not model.has_pca:
            raise WeightsError(
                "vggish: --pca needs the PCA parameters: pass --pca-file "
                "vggish_pca_params-970ea276.pth or put pca_* keys in the weights file"
            )
        model.weights_digest = file_digest(weights)
        return model.eval()
