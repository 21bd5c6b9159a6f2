"""FAD embedding backends, each loaded from local files only.

=========  ============================================  ==================
name       model                                         ``weights``
=========  ============================================  ==================
vggish     torchvggish VGGish, 16 kHz                    .pth / .safetensors
clap       LAION CLAP (HTSAT + RoBERTa), 48 kHz          laion .pt or HF dir
encodec    EnCodec encoder latents (24 / 48 kHz)         encodec checkpoint
codec      any audiogen codec's encoder latents          codec directory
mfcc       40 MFCCs, 16 kHz                              none
=========  ============================================  ==================
"""

from __future__ import annotations

import os

from audiogen.errors import UserError
from audiogen.eval.embeddings.base import EmbeddingModel, WeightsError, load_state

NAMES = ("vggish", "clap", "encodec", "codec", "mfcc")

__all__ = ["NAMES", "EmbeddingModel", "WeightsError", "build_embedding", "load_state"]


def build_embedding(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    pca: bool = False,
    pca_file: str | os.PathLike | None = None,
    activation: bool = False,
    tokenizer: str | os.PathLike | None = None,
) -> EmbeddingModel:
    """Build backend ``name`` from local ``weights``; ``pca*``/``activation`` are VGGish's,
    ``tokenizer`` (a local tokenizer directory) is CLAP's."""
    if name == "vggish":
        from audiogen.eval.embeddings.vggish import VGGish

        return VGGish.from_files(weights, pca_file=pca_file, activation=activation, pca=pca)
    if name == "clap":
        from audiogen.eval.embeddings.clap import CLAP

        return CLAP.from_path(weights, tokenizer=tokenizer)
    if name == "encodec":
        from audiogen.eval.embeddings.codec import encodec_embedding

        return encodec_embedding(weights)
    if name == "codec":
        from audiogen.eval.embeddings.codec import codec_embedding

        return codec_embedding(weights)
    if name == "mfcc":
        from audiogen.eval.embeddings.mfcc import MFCC

        return MFCC().eval()
    raise UserError(f"unknown embedding {name!r}; choose one of {', '.join(NAMES)}")
