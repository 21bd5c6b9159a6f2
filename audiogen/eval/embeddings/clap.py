"""LAION CLAP (HTSAT audio tower + RoBERTa text tower) from local files.

Two formats load, both into a transformers ``ClapModel``:

- laion_clap's own checkpoint file (``630k-audioset-best.pt``,
  ``music_audioset_epoch_15_esc_90.14.pt``), renamed by :mod:`.clap_laion`;
- a transformers ``ClapModel`` directory (``config.json``, ``model.safetensors``,
  feature-extractor and tokenizer files), as on the hub (``laion/clap-htsat-unfused``,
  ``laion/larger_clap_music``), read with ``local_files_only=True``.

Nothing is downloaded. Text needs RoBERTa's tokenizer, from ``tokenizer`` (a directory) or
the model directory. Audio runs at 48 kHz in windows of up to 10 s (repeat-padded, so no
random cropping), one unit-norm embedding per window.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from audiogen.eval.embeddings.base import EmbeddingModel, WeightsError, file_digest

WANTS = (
    "a laion_clap checkpoint (.pt) or a transformers ClapModel directory "
    "(config.json, model.safetensors, tokenizer files)"
)
TOKENIZER_WANTS = (
    "pass --tokenizer DIR, a local directory with RoBERTa's tokenizer files "
    "(tokenizer.json, or vocab.json and merges.txt, as in roberta-base or a transformers "
    "CLAP directory)"
)


class CLAP(EmbeddingModel):
    """Audio ``[B, 1, T]`` at 48 kHz → ``[B, W, D]``, one embedding per model-length window.

    Args:
        model: a ``transformers.ClapModel``.
        feature_extractor: its ``ClapFeatureExtractor``.
        tokenizer: a tokenizer for :meth:`embed_text` (optional for FAD).
        max_text_tokens: truncate captions to this many tokens (laion_clap uses 77).
    """

    name = "clap"
    channels = 1

    def __init__(self, *, model, feature_extractor, tokenizer=None, max_text_tokens=None):
        super().__init__()
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.sample_rate = int(feature_extractor.sampling_rate)
        self.dim = int(model.config.projection_dim)
        # The model's input length (10 s for LAION's checkpoints): longer audio is split.
        self.window = int(feature_extractor.max_length_s * self.sample_rate)
        self.max_text_tokens = max_text_tokens
        # Fusion checkpoints take 4 mel views (global + 3 local crops); a window no longer
        # than the model's input has identical views and runs the global path only.
        self.fusion = bool(model.config.audio_config.enable_fusion)

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
                truncation="fusion" if self.fusion else "rand_trunc",
                padding="repeatpad",
            )
            device = next(self.model.parameters()).device
            mel = feats["input_features"]  # [W, 1 or 4, frames, mels]
            # The feature extractor marks a random window "longer" when none is (a training
            # trick); at evaluation no window exceeds the model's input, so none is.
            longer = torch.zeros(mel.shape[0], 1, dtype=torch.bool) if self.fusion else None
            res = self.model.get_audio_features(input_features=mel.to(device), is_longer=longer)
            out.append(res.pooler_output)
        return torch.stack(out)

    def require_text(self) -> None:
        """Raise the WeightsError :meth:`embed_text` would, before any audio is embedded."""
        if self.tokenizer is None:
            raise WeightsError(f"clap: text needs RoBERTa's tokenizer; {TOKENIZER_WANTS}")

    @torch.inference_mode()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Unit-norm text embeddings ``[N, D]``."""
        self.require_text()
        cut = self.max_text_tokens
        tok = self.tokenizer(
            texts, padding=True, truncation=cut is not None, max_length=cut, return_tensors="pt"
        )
        device = next(self.model.parameters()).device
        res = self.model.get_text_features(
            input_ids=tok["input_ids"].to(device),
            attention_mask=tok["attention_mask"].to(device) if "attention_mask" in tok else None,
        )
        return res.pooler_output.float().cpu().numpy()

    @classmethod
    def from_path(
        cls, weights: str | os.PathLike | None, *, tokenizer: str | os.PathLike | None = None
    ) -> CLAP:
        """Load a laion_clap ``.pt`` file or a ClapModel directory; ``tokenizer`` is a local
        tokenizer directory (else the model directory's, if it has one)."""
        p = Path(weights) if weights is not None else None
        if p is not None and p.is_file():
            from audiogen.eval.embeddings.clap_laion import TEXT_MAX_TOKENS, load_laion_clap

            model, fe = load_laion_clap(p)
            clap = cls(
                model=model,
                feature_extractor=fe,
                tokenizer=_tokenizer(tokenizer),
                max_text_tokens=TEXT_MAX_TOKENS,
            )
            clap.weights_digest = file_digest(p)
            return clap
        return cls.from_dir(p, tokenizer=tokenizer)

    @classmethod
    def from_dir(
        cls, directory: str | os.PathLike | None, *, tokenizer: str | os.PathLike | None = None
    ) -> CLAP:
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
        if tokenizer is not None:
            tok = _tokenizer(tokenizer)
        else:
            try:
                tok = AutoTokenizer.from_pretrained(p, local_files_only=True)
            except (OSError, ValueError):
                tok = None  # audio-only use (FAD) needs no tokenizer
        clap = cls(model=model, feature_extractor=fe, tokenizer=tok)
        clap.weights_digest = file_digest(weights)
        return clap


def _tokenizer(directory: str | os.PathLike | None):
    """A tokenizer from a local directory; None when none is given (audio-only use)."""
    if directory is None:
        return None
    from transformers import AutoTokenizer

    p = Path(directory)
    if not p.is_dir():
        raise WeightsError(f"clap: tokenizer directory not found: {p} ({TOKENIZER_WANTS})")
    try:
        return AutoTokenizer.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError) as e:
        if (p / "vocab.json").is_file() and (p / "merges.txt").is_file():
            # roberta-base's bare BPE files, without a tokenizer_config.json naming the class
            from transformers import RobertaTokenizer

            return RobertaTokenizer(str(p / "vocab.json"), str(p / "merges.txt"))
        raise WeightsError(f"clap: no tokenizer in {p} ({e}); {TOKENIZER_WANTS}") from e


def clap_score(audio_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Cosine similarity per pair: ``audio_emb [N, D]`` (clip means), ``text_emb [N, D]`` → [N]."""
    a = audio_emb / np.linalg.norm(audio_emb, axis=-1, keepdims=True).clip(1e-12)
    t = text_emb / np.linalg.norm(text_emb, axis=-1, keepdims=True).clip(1e-12)
    return (a * t).sum(-1)
