"""Codec-encoder embeddings: the continuous latents ``[F, D]`` a codec quantises.

``encodec`` reads an ``encodec`` package checkpoint (e.g. ``encodec_24khz-d7cc33bc.th``)
through :mod:`audiogen.codecs.convert`; ``codec`` takes any audiogen codec directory.
Both use the encoder output before quantisation, at the codec's frame rate.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from audiogen.codecs import Codec
from audiogen.eval.embeddings.base import EmbeddingModel, WeightsError, file_digest

ENCODEC_WANTS = "an encodec checkpoint such as encodec_24khz-d7cc33bc.th or .safetensors"
CODEC_WANTS = "an audiogen codec directory (config.json + model.safetensors)"


class CodecEmbedding(EmbeddingModel):
    """Audio ``[B, C, T]`` at the codec's rate → encoder latents ``[B, F, D]``.

    Normalising codecs (EnCodec 48 kHz) see each clip scaled to unit RMS first, as their
    encoder does in use; clips are encoded whole (no segmentation).
    """

    def __init__(self, codec: Codec, *, name: str, digest: str) -> None:
        super().__init__()
        self.codec = codec.eval()
        self.name = name
        self.sample_rate = codec.sample_rate
        self.channels = codec.channels
        self.dim = int(codec.config.dimension)
        self.weights_digest = digest

    def describe(self) -> dict:
        return {**super().describe(), "frame_rate": self.codec.frame_rate, "layer": "encoder"}

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if self.codec.config.normalize:
            rms = wav.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()
            wav = wav / (rms + 1e-8)
        return self.codec.encoder(wav).transpose(1, 2)  # [B, D, F] -> [B, F, D]


def encodec_embedding(weights: str | os.PathLike | None) -> CodecEmbedding:
    """The ``encodec`` backend from a local checkpoint file."""
    from audiogen.codecs.convert import load_encodec_checkpoint

    if weights is None or not Path(weights).is_file():
        raise WeightsError(f"encodec: weights file not found: {weights} (expected {ENCODEC_WANTS})")
    codec = load_encodec_checkpoint(weights)
    return CodecEmbedding(codec, name="encodec", digest=file_digest(weights))


def codec_embedding(directory: str | os.PathLike | None) -> CodecEmbedding:
    """The ``codec`` backend from an audiogen codec directory."""
    p = Path(directory) if directory is not None else None
    if p is None or not (p / "model.safetensors").is_file():
        raise WeightsError(f"codec: weights not found: {p} (expected {CODEC_WANTS})")
    codec = Codec.load(p)
    return CodecEmbedding(codec, name="codec", digest=file_digest(p / "model.safetensors"))
