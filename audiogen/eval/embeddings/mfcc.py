"""MFCC frames as a weight-free embedding: a baseline and a smoke test for the FAD path."""

from __future__ import annotations

import torch

from audiogen.eval.embeddings.base import EmbeddingModel


class MFCC(EmbeddingModel):
    """Audio ``[B, 1, T]`` at 16 kHz → ``[B, F, n_mfcc]`` (25 ms window, 10 ms hop, 64 mels)."""

    name = "mfcc"
    sample_rate = 16000
    channels = 1

    def __init__(self, *, n_mfcc: int = 40) -> None:
        super().__init__()
        import torchaudio

        self.dim = n_mfcc
        self.weights_digest = f"n{n_mfcc}-w400-h160-m64"
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=self.sample_rate,
            n_mfcc=n_mfcc,
            melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 64, "center": False},
        )

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.shape[-1] < 400:
            return wav.new_zeros(wav.shape[0], 0, self.dim)
        return self.mfcc(wav[:, 0]).transpose(1, 2)  # [B, n_mfcc, F] -> [B, F, n_mfcc]
