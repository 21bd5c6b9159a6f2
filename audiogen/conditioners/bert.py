"""A BERT encoder and its WordPiece tokenizer without ``transformers``: the default MiniLM.

The offline default text encoder (MiniLM-L6, a 6-layer BERT) is small, but loading it
through ``transformers`` costs its import, ~5 s on a 2-core CPU: more than generating 10 s
of audio with the bundled model. :class:`BertEncoder` is BERT's encoder (post-norm layers,
absolute positions, exact GELU) with HF ``BertModel``'s parameter names, so the package's
``model.safetensors`` loads as it is and fine-tuned checkpoints keep their keys;
:class:`WordPieceTokenizer` runs the package's ``tokenizer.json`` through the ``tokenizers``
library (what HF's fast tokenizer wraps). tests/conditioners/test_bert.py checks both
against ``transformers`` on the real MiniLM weights.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from audiogen.errors import UserError


@dataclass
class BertOutput:
    last_hidden_state: torch.Tensor  # [B, S, hidden]


class _Embeddings(nn.Module):
    def __init__(self, cfg: dict) -> None:
        super().__init__()
        h = cfg["hidden_size"]
        self.word_embeddings = nn.Embedding(
            cfg["vocab_size"], h, padding_idx=cfg.get("pad_token_id", 0)
        )
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(cfg.get("type_vocab_size", 2), h)
        self.LayerNorm = nn.LayerNorm(h, eps=cfg.get("layer_norm_eps", 1e-12))
        self.dropout = nn.Dropout(cfg.get("hidden_dropout_prob", 0.0))

    def forward(self, ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        types = token_type_ids if token_type_ids is not None else torch.zeros_like(ids)
        x = self.word_embeddings(ids) + self.token_type_embeddings(types)
        return self.dropout(self.LayerNorm(x + self.position_embeddings(pos)))


class _SelfAttention(nn.Module):
    def __init__(self, h: int) -> None:
        super().__init__()
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)


class _Projection(nn.Module):
    """``LayerNorm(x + dropout(dense(h)))``: BERT's post-norm residual."""

    def __init__(self, n_in: int, h: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, h)
        self.LayerNorm = nn.LayerNorm(h, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(x + self.dropout(self.dense(h)))


class _Attention(nn.Module):
    def __init__(self, h: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.self = _SelfAttention(h)
        self.output = _Projection(h, h, eps, dropout)


class _Intermediate(nn.Module):
    def __init__(self, h: int, inner: int) -> None:
        super().__init__()
        self.dense = nn.Linear(h, inner)


class _Layer(nn.Module):
    def __init__(self, cfg: dict) -> None:
        super().__init__()
        h, eps = cfg["hidden_size"], cfg.get("layer_norm_eps", 1e-12)
        dropout = cfg.get("hidden_dropout_prob", 0.0)
        self.heads = cfg["num_attention_heads"]
        self.attn_dropout = cfg.get("attention_probs_dropout_prob", 0.0)
        self.attention = _Attention(h, eps, dropout)
        self.intermediate = _Intermediate(h, cfg["intermediate_size"])
        self.output = _Projection(cfg["intermediate_size"], h, eps, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        sa = self.attention.self

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, self.heads, h // self.heads).transpose(1, 2)

        p = self.attn_dropout if self.training else 0.0
        q, k, v = heads(sa.query(x)), heads(sa.key(x)), heads(sa.value(x))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = self.attention.output(a.transpose(1, 2).reshape(b, s, h), x)
        return self.output(F.gelu(self.intermediate.dense(x)), x)


class _Encoder(nn.Module):
    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(cfg) for _ in range(cfg["num_hidden_layers"]))


class _Pooler(nn.Module):
    """HF ``BertModel``'s pooler, kept so the weights and checkpoints load key for key; the
    conditioner uses the hidden states, never the pooled output."""

    def __init__(self, h: int) -> None:
        super().__init__()
        self.dense = nn.Linear(h, h)


class BertEncoder(nn.Module):
    """BERT's encoder: ``forward(input_ids, attention_mask)`` -> :class:`BertOutput`.

    ``config`` is the model directory's ``config.json`` (``model_type`` ``bert``,
    ``hidden_act`` ``gelu``, absolute positions)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size"):
            if key not in config:
                raise ValueError(f"BERT config without {key}")
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported hidden_act {config['hidden_act']!r} (gelu only)")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        self.config = dict(config)
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)
        self.pooler = _Pooler(config["hidden_size"])

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> BertOutput:
        x = self.embeddings(input_ids, token_type_ids)
        mask = None
        if attention_mask is not None:  # additive, as HF: padded keys get the dtype's minimum
            keep = attention_mask.bool()[:, None, None, :]
            mask = torch.zeros(keep.shape, dtype=x.dtype, device=x.device)
            mask = mask.masked_fill(~keep, torch.finfo(x.dtype).min)
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return BertOutput(last_hidden_state=x)

    @classmethod
    def from_dir(cls, path: str | Path) -> BertEncoder:
        """Config and ``model.safetensors`` of a local BERT directory (strict keys)."""
        p = Path(path)
        try:
            config = json.loads((p / "config.json").read_text())
            model = cls(config)
            state = load_file(str(p / "model.safetensors"))
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{p}: cannot load the BERT encoder ({e})") from None
        state.pop("embeddings.position_ids", None)  # a buffer HF stores; positions are made here
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UserError(
                f"{p / 'model.safetensors'}: not this BERT's weights "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        return model.eval()


class WordPieceTokenizer:
    """A directory's ``tokenizer.json`` through the ``tokenizers`` library, called like HF's
    tokenizers: ``tok(texts, padding=True, truncation=True, max_length=N,
    return_tensors="pt")`` -> ``{"input_ids", "attention_mask"}`` (int64 ``[B, S]``,
    padded to the longest)."""

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer

        p = Path(path) / "tokenizer.json"
        try:
            self._tok = Tokenizer.from_file(str(p))
        except Exception as e:  # tokenizers raises its own exception types
            raise UserError(f"{p}: cannot load the tokenizer ({e})") from None
        self.pad_id = self._tok.token_to_id("[PAD]") or 0
        self._lock = threading.Lock()  # the settings below are the tokenizer's own state

    def __call__(
        self,
        texts: Sequence[str],
        *,
        padding: bool = True,
        truncation: bool = True,
        max_length: int = 512,
        return_tensors: str = "pt",
    ) -> dict[str, torch.Tensor]:
        if return_tensors != "pt":
            raise ValueError("WordPieceTokenizer returns torch tensors only")
        with self._lock:
            return self._encode(list(texts), padding, truncation, max_length)

    def _encode(
        self, texts: list[str], padding: bool, truncation: bool, max_length: int
    ) -> dict[str, torch.Tensor]:
        tok = self._tok
        if truncation:  # special tokens count: [CLS] + max_length - 2 tokens + [SEP]
            tok.enable_truncation(max_length)
        else:
            tok.no_truncation()
        if padding:
            tok.enable_padding(pad_id=self.pad_id, pad_token="[PAD]")
        else:
            tok.no_padding()
        encoded = tok.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encoded], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encoded], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask}


def bert_dir_is_native(path: str | Path) -> bool:
    """True when a directory holds a plain BERT this module can run (config, safetensors
    weights and a ``tokenizer.json``)."""
    p = Path(path)
    try:
        config = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act", "gelu") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and (p / "model.safetensors").exists()
        and (p / "tokenizer.json").exists()
    )
