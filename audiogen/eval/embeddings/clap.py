"""LAION CLAP (HTSAT audio tower + RoBERTa text tower) from a local directory.

The directory is a transformers ``ClapModel`` export (``config.json``,
``model.safetensors``, feature-extractor and tokenizer files), the format LAION publishes
its checkpoints in (``laion/clap-htsat-unfused``, ``laion/larger_clap_music``). It is read
with ``local_files_only=True``; nothing is downloaded. Audio runs at 48 kHz in windows of
up to 10 s (repeat-padded, so no random cropping), one unit-norm embedding per window.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from audiogen.eval.embeddings.base import EmbeddingModel, WeightsError, file_digest

WANTS = "a transformers ClapModel directory (config.json, model.safetensors, tokenizer files)"


class CLAP(EmbeddingModel):
    """Audio ``[B, 1, T]`` at 48 kHz → ``[B, W, D]``, one embedding per model-length window.

    Args:
        model: a ``transformers.ClapModel``.
        feature_extractor: its ``ClapFeatureExtractor``.
        tokenizer: a tokenizer for :meth:`embed_text` (optional for FAD).
    """

    name = "clap"
    channels = 1

    def __init__(self, *, model, feature_extractor, tokenizer=None):
        super().__init__()
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.sample_rate = int(feature_extractor.sampling_rate)
        self.dim = int(model.config.projection_dim)
        # The model's input length (10 s for LAION's checkpoints): longer audio is split.
        self.window = int(feature_extractor.max_length_s * self.sample_rate)

    def describe(self) -> dict:
        return {**super().describe(), "window_s": self.window / self.sample_rate}

    def _windows(self, wav: torch.Tensor) -> list[np.ndarray]:
        """``wav [T]`` → windows of at most ``self.window`` samples (the last may be shorter)."""
        x = wav.cpu().numpy()
        n = max(1, int(np.ceil(x.shape[0] / self.window)))
        return [x[i * self.window : (i + 1) * self.window] for i in range(n)]

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav [B, 1, T]`` at 48 kHz → ``[B, W, D]`` (all clips of a batch equally long)."""
        out = []
        for clip in wav[:, 0]:
            feats = self.feature_extractor(
                self._windows(clip),
                sampling_rate=self.sample_rate,
                return_tensors="pt",
                truncation="rand_trunc",
                padding="repeatpad",
            )
            device = next(self.model.parameters()).device
            res = self.model.get_audio_features(
                input_features=feats["input_features"].to(device),
                is_longer=feats.get("is_longer", None),
            )
            out.append(res.pooler_output)
        return torch.stack(out)

    @torch.inference_mode()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Unit-norm text embeddings ``[N, D]``."""
        if self.tokenizer is None:
            raise WeightsError("clap: no tokenizer files in the model directory; text needs one")
        tok = self.tokenizer(texts, padding=True, return_tensors="pt")
        res = self.model.get_text_features(
            input_ids=tok["input_ids"], attention_mask=tok.get("attention_mask")
        )
        return res.pooler_output.float().cpu().numpy()

    @classmethod
    def from_dir(cls, directory: str | os.PathLike | None) -> CLAP:
        """Load a local ClapModel directory; a missing one is a WeightsError naming it."""
        p = Path(directory) if directory is not None else None
        if p is None or not (p / "config.json").is_file():
            raise WeightsError(f"clap: model directory not found: {p} (expected {WANTS})")
        weights = p / "model.safetensors"
        if not weights.is_file():
            raise WeightsError(f"clap: weights file not found: {weights} (expected {WANTS})")
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        try:
            model = ClapModel.from_pretrained(p, local_files_only=True, use_safetensors=True)
            fe = ClapFeatureExtractor.from_pretrained(p, local_files_only=True)
        except (OSError, ValueError) as e:
            raise WeightsError(f"clap: cannot load {p} ({e})") from e
        try:
            tokenizer = AutoTokenizer.from_pretrained(p, local_files_only=True)
        except (OSError, ValueError):
            tokenizer = None  # audio-only use (FAD) needs no tokenizer
        clap = cls(model=model, feature_extractor=fe, tokenizer=tokenizer)
        clap.weights_digest = file_digest(weights)
        return clap


def clap_score(audio_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Cosine similarity per pair: ``audio_emb [N, D]`` (clip means), ``text_emb [N, D]`` → [N]."""
    a = audio_emb / np.linalg.norm(audio_emb, axis=-1, keepdims=True).clip(1e-12)
    t = text_emb / np.linalg.norm(text_emb, axis=-1, keepdims=True).clip(1e-12)
    return (a * t).sum(-1)
