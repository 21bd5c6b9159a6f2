"""Melody model configs, builders, scoring, and loading from checkpoints or the bundled assets.

Every melody model answers two questions about token ids ``[B, S]``:

- :func:`token_log_probs`: ``log p(ids[:, j] | ids[:, :j])`` for j >= 1, ``[B, S-1]``;
- :func:`next_log_probs`: the log-distribution of the next token, ``[B, V]``.

A model directory holds ``config.json`` (``format = "audiogen-melody"``, the ``model``
section, the rest of the training recipe) and ``model.safetensors``; a training run
directory (``OUT`` of ``audiogen train melody``) means its latest checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn
from torch.nn import functional as F

from audiogen.errors import UserError
from audiogen.fileio import atomic_write_bytes, atomic_write_text
from audiogen.melody.markov import MarkovModel
from audiogen.melody.neural import MelodyLSTM, MelodyTransformer
from audiogen.melody.tokens import CONDITION_LEN, get_tokenizer

FORMAT = "audiogen-melody"
ASSETS = Path(__file__).resolve().parent.parent / "assets" / "melody"
BUNDLED = ("tiny", "lstm", "markov")  # --model NAME -> assets/melody/NAME (tiny: the Transformer)


@dataclass
class MelodyModelConfig:
    """The ``[model]`` section of a melody recipe (only the kind's own fields are used)."""

    kind: Literal["markov", "lstm", "transformer"] = "transformer"
    order: int = 5  # markov: tokens of context (1..6)
    min_count: int = 1  # markov: drop n-grams (context >= 2 tokens) seen fewer times
    dim: int = 192  # lstm / transformer width
    num_layers: int = 4
    num_heads: int = 4  # transformer
    ffn_dim: int = 768  # transformer
    dropout: float = 0.1
    max_len: int = 1024  # transformer: positions; longer inputs are scored in windows

    def __post_init__(self) -> None:
        if self.kind == "markov" and not 1 <= self.order <= 6:
            raise ValueError(f"model.order must be 1..6, got {self.order}")
        if self.kind == "transformer" and self.dim % self.num_heads:
            raise ValueError(f"model.dim {self.dim} is not divisible by model.num_heads")
        if self.max_len <= 2 * CONDITION_LEN:
            raise ValueError(f"model.max_len must be > {2 * CONDITION_LEN}")


def build_model(cfg: MelodyModelConfig) -> nn.Module:
    """An untrained model for ``cfg`` (a Markov model without counts)."""
    tok = get_tokenizer()
    v = tok.vocab_size
    if cfg.kind == "markov":
        return MarkovModel(
            vocab_size=v, order=cfg.order, pad_id=tok.pad_id, scored_from=CONDITION_LEN
        )
    if cfg.kind == "lstm":
        return MelodyLSTM(vocab_size=v, dim=cfg.dim, num_layers=cfg.num_layers, dropout=cfg.dropout)
    return MelodyTransformer(
        vocab_size=v,
        dim=cfg.dim,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        ffn_dim=cfg.ffn_dim,
        dropout=cfg.dropout,
        max_len=cfg.max_len,
    )


# ----------------------------------------------------------------------------- scoring


def token_log_probs(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """``[B, S-1]`` log-probabilities of ``ids[:, 1:]`` given everything before."""
    if isinstance(model, MarkovModel):
        return model.token_log_probs(ids)
    if isinstance(model, MelodyTransformer) and ids.shape[1] > model.max_len:
        return _windowed_log_probs(model, ids)
    logp = F.log_softmax(model(ids[:, :-1]).float(), dim=-1)
    return logp.gather(-1, ids[:, 1:, None])[..., 0]


def _windowed_log_probs(model: MelodyTransformer, ids: torch.Tensor) -> torch.Tensor:
    """Score a sequence longer than the model's positions: windows that keep the
    conditions and at least half a window of preceding tokens as context."""
    b, s = ids.shape
    n, c = model.max_len, CONDITION_LEN
    out = torch.empty(b, s - 1, device=ids.device)
    logp = F.log_softmax(model(ids[:, : n - 1]).float(), dim=-1)
    out[:, : n - 1] = logp.gather(-1, ids[:, 1:n, None])[..., 0]
    body = n - c
    stride = max(1, body // 2)
    done = n  # next target index to score
    while done < s:
        end = min(s, done + stride)
        start = end - body
        window = torch.cat([ids[:, :c], ids[:, start:end]], dim=1)
        logp = F.log_softmax(model(window[:, :-1]).float(), dim=-1)
        # target t sits at window index c + t - start and is predicted one index earlier
        first = c + done - start - 1
        tgt = window[:, first + 1 :]
        out[:, done - 1 : end - 1] = logp[:, first:].gather(-1, tgt[..., None])[..., 0]
        done = end
    return out


@torch.no_grad()
def next_log_probs(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """``[B, V]`` log-distribution of the token after ``ids [B, S]``."""
    if isinstance(model, MarkovModel):
        return model.next_log_probs(ids)
    if isinstance(model, MelodyTransformer) and ids.shape[1] > model.max_len:
        keep = model.max_len - CONDITION_LEN
        ids = torch.cat([ids[:, :CONDITION_LEN], ids[:, -keep:]], dim=1)
    return F.log_softmax(model(ids)[:, -1].float(), dim=-1)


# ----------------------------------------------------------------------------- files


@dataclass
class LoadedModel:
    """A melody model ready for scoring and sampling (fp32, eval mode)."""

    model: nn.Module
    config: MelodyModelConfig
    name: str  # "tiny", "markov" or the directory


def _model_dir(spec: str | os.PathLike) -> tuple[Path, str]:
    from audiogen.train.checkpoint import resolve_checkpoint

    text = str(spec)
    if text in BUNDLED:
        root = ASSETS / text
        if not (root / "config.json").is_file():
            raise UserError(f"this install has no bundled melody model {text!r} ({root})")
        return root, text
    p = Path(text)
    if not p.exists():
        raise UserError(f"{p}: no such melody model (use tiny, markov or a model directory)")
    if (p / "config.json").is_file():
        return p, text
    try:
        return resolve_checkpoint(p), text
    except UserError:
        raise UserError(f"{p}: not a melody model directory (no config.json)") from None


def load_model(spec: str | os.PathLike = "tiny") -> LoadedModel:
    """Load ``tiny`` / ``markov`` (bundled), a model directory or a training run."""
    from audiogen.train.recipes import from_dict

    root, name = _model_dir(spec)
    try:
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{root / 'config.json'}: unreadable ({e})") from None
    if config.get("format") != FORMAT:
        raise UserError(f"{root}: not a melody model (config.json format is not {FORMAT!r})")
    source = str(root / "config.json")
    cfg = from_dict(MelodyModelConfig, config.get("model", {}), source=source, prefix="model")
    try:
        state = load_file(str(root / "model.safetensors"))
    except (OSError, SafetensorError) as e:
        raise UserError(f"{root / 'model.safetensors'}: unreadable weights ({e})") from None
    if cfg.kind == "markov":
        model = MarkovModel(
            vocab_size=get_tokenizer().vocab_size,
            order=cfg.order,
            pad_id=get_tokenizer().pad_id,
            scored_from=CONDITION_LEN,
            tables={k: v for k, v in state.items() if k != "log_beta"},
        )
    else:
        model = build_model(cfg)
    try:
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        )
    except RuntimeError as e:
        raise UserError(f"{root}: weights do not fit the config ({str(e)[:200]})") from None
    return LoadedModel(model=model.float().eval(), config=cfg, name=name)


def save_model(
    model: nn.Module,
    cfg: MelodyModelConfig,
    directory: str | os.PathLike,
    extra: dict | None = None,
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (atomically each) into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(d / "model.safetensors", save(state))
    atomic_write_text(
        d / "config.json",
        json.dumps(
            {"format": FORMAT, "version": 1, **(extra or {}), "model": asdict(cfg)}, indent=2
        ),
    )
    return d


# ----------------------------------------------------------------------------- decoding


class Stepper:
    """Incremental next-token distributions: :meth:`start` with the prefix ``[B, S]``, then
    :meth:`advance` with one new token per row; both return ``[B, V]`` log-probs.

    The Transformer keeps a key/value cache (past ``max_len`` it re-reads a window of the
    conditions plus the latest tokens each step), the LSTM its state, the Markov chain the
    ids.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.ids: torch.Tensor | None = None
        self.state = None

    @torch.no_grad()
    def start(self, ids: torch.Tensor) -> torch.Tensor:
        self.ids = ids
        m = self.model
        if isinstance(m, MelodyTransformer) and ids.shape[1] <= m.max_len:
            self.state = [[] for _ in m.blocks]
            return F.log_softmax(m(ids, self.state)[:, -1].float(), dim=-1)
        if isinstance(m, MelodyLSTM):
            h, self.state = m.lstm(m.emb(ids))
            return F.log_softmax(m.head(h[:, -1]).float(), dim=-1)
        self.state = None
        return next_log_probs(m, ids)

    @torch.no_grad()
    def advance(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens ``[B]``: the token just chosen for each row."""
        assert self.ids is not None, "call start() first"
        self.ids = torch.cat([self.ids, tokens[:, None]], dim=1)
        m = self.model
        if isinstance(m, MelodyTransformer) and self.state is not None:
            if self.ids.shape[1] <= m.max_len:
                return F.log_softmax(m(tokens[:, None], self.state)[:, -1].float(), dim=-1)
            self.state = None  # past the positions: windowed recomputation from here
        if isinstance(m, MelodyLSTM):
            h, self.state = m.lstm(m.emb(tokens[:, None]), self.state)
            return F.log_softmax(m.head(h[:, -1]).float(), dim=-1)
        return next_log_probs(m, self.ids)
