"""The MusicGen-architecture LM over codec tokens.

K token embeddings ``Embedding(card + 1, D)`` (the extra row is the special token) are
summed, sinusoidal positions are added (no embedding scale: HF computes
``sqrt(d)`` but never applies it, audiocraft uses scale 1), then pre-norm decoder layers, a
final LayerNorm and one ``Linear(D, card)`` head per codebook (stored fused as one
``[K * card, D]`` matrix so a decode step runs a single matmul).

Conditions arrive as tensors already at the LM width: ``cross [B, Sc, D]`` with
``cross_mask [B, Sc]`` for cross-attention, and/or ``prefix [B, P, D]`` prepended to the
sequence (MusicGen-melody's fuser; logits for prefix positions are dropped), and/or
``frame [B, F, D]`` added to the token embeddings position by position (a frame-aligned
condition: position ``s`` gets ``frame[:, s]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from .config import LMConfig
from .transformer import CrossKV, DecoderLayer, KVCache, Linear, cross_attn_mask

if TYPE_CHECKING:
    from .fused import FusedDecoder


def sinusoidal_table(num_positions: int, dim: int) -> torch.Tensor:
    """``[N, D]`` float32 table ``[cos(p * w), sin(p * w)]``, ``w_i = 10000^(-i / (D/2 - 1))``.

    The ``D/2 - 1`` denominator is what HF MusicGen and audiocraft use (tensor2tensor's
    layout), so positions match imported weights exactly.
    """
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000.0) / (half - 1)))
    phase = torch.arange(num_positions, dtype=torch.float32)[:, None] * freqs[None]
    table = torch.cat([torch.cos(phase), torch.sin(phase)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(num_positions, 1)], dim=1)
    return table


@dataclass
class LMOutput:
    """logits: ``[B, K, S, card]`` (prefix positions removed); hidden: ``[B, S, D]``."""

    logits: torch.Tensor
    hidden: torch.Tensor


class MusicLM(nn.Module):
    """MusicGen's decoder-only LM. Build with ``MusicLM(config=LMConfig(...))``."""

    def __init__(self, *, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.ModuleList(
            [nn.Embedding(c.cardinality + 1, c.dim) for _ in range(c.num_codebooks)]
        )
        self.layers = nn.ModuleList(
            [
                DecoderLayer(
                    dim=c.dim,
                    num_heads=c.num_heads,
                    ffn_dim=c.ffn_dim,
                    cross_attention=c.cross_attention,
                    norm_eps=c.norm_eps,
                    dropout=c.dropout,
                )
                for _ in range(c.num_layers)
            ]
        )
        self.out_norm = nn.LayerNorm(c.dim, eps=c.norm_eps)
        self.heads = Linear(c.dim, c.num_codebooks * c.cardinality, bias=False)
        self.register_buffer(
            "pos_table", sinusoidal_table(c.max_positions, c.dim), persistent=False
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # Same scheme as HF MusicGen (normal(0, 0.02), LayerNorm ones/zeros).
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)

    # -- pieces, shared by the plain forward and the cached generation path -------------

    def positions(self, start: int, length: int) -> torch.Tensor:
        """``[length, D]`` sinusoidal embeddings for positions ``[start, start + length)``."""
        end = start + length
        if end > self.pos_table.shape[0]:
            table = sinusoidal_table(max(end, 2 * self.pos_table.shape[0]), self.config.dim)
            self.pos_table = table.to(self.pos_table.device)
        return self.pos_table[start:end]

    def embed_codes(self, seq: torch.Tensor) -> torch.Tensor:
        """seq ``[B, K, S]`` -> summed embeddings ``[B, S, D]``."""
        x = self.embed[0](seq[:, 0])
        for k in range(1, len(self.embed)):
            x = x + self.embed[k](seq[:, k])
        return x

    @staticmethod
    def frame_inputs(frame: torch.Tensor, start: int, length: int) -> torch.Tensor:
        """``frame[:, start : start + length]``, zero-padded past its end: ``[B, length, D]``."""
        part = frame[:, start : start + length]
        if part.shape[1] < length:
            part = nn.functional.pad(part, (0, 0, 0, length - part.shape[1]))
        return part

    def cross_kv(
        self, cross: torch.Tensor | None, cross_mask: torch.Tensor | None, *, lazy: bool = False
    ) -> CrossKV | None:
        """Project the condition once for every layer; None when there is no cross input.

        ``lazy=True`` (the plain forward, training) projects nothing here: each layer
        projects its own K/V inside its forward, so its weights are only used there (what
        per-layer FSDP sharding needs)."""
        if cross is None or not self.config.cross_attention:
            return None
        mask, keep = cross_attn_mask(cross_mask, dtype=cross.dtype)
        # A row with no valid key must contribute 0: zero its values (no bias, so
        # out_proj(0) = 0) rather than scaling the output at every decode step.
        value_keep = None if keep is None else keep[..., None]
        if mask is not None:
            # One additive mask for all layers and steps (SDPA would convert a bool mask
            # at every call); None when every key is visible.
            mask = (
                None
                if bool(mask.all())
                else torch.zeros(mask.shape, dtype=cross.dtype, device=mask.device).masked_fill(
                    ~mask, float("-inf")
                )
            )
        if lazy:
            return CrossKV(k=None, v=None, mask=mask, source=cross, value_keep=value_keep)
        ks, vs = [], []
        for layer in self.layers:
            k, v = layer.cross_attn.project_kv(cross)
            ks.append(k)
            vs.append(v if value_keep is None else v * value_keep)
        return CrossKV(k=ks, v=vs, mask=mask)

    def backbone(
        self,
        x: torch.Tensor,
        *,
        start: int = 0,
        cache: KVCache | None = None,
        cross_kv: CrossKV | None = None,
        fused: FusedDecoder | None = None,
    ) -> torch.Tensor:
        """x: input embeddings ``[B, S, D]`` at positions ``[start, start + S)`` ->
        normalised hidden states ``[B, S, D]``. ``fused`` (built for ``cache`` and
        ``cross_kv``) runs the layers of a one-position step in one compiled call."""
        x = x + self.positions(start, x.shape[1]).to(x.dtype)
        if fused is not None and x.shape[1] == 1:
            out = fused(x, start)
            if out is not None:
                return self.out_norm(out)
        for i, layer in enumerate(self.layers):
            x = layer(x, layer=i, start=start, cache=cache, cross_kv=cross_kv)
        return self.out_norm(x)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden ``[B, S, D]`` -> logits ``[B, K, S, card]``."""
        b, s, _ = hidden.shape
        c = self.config
        return self.heads(hidden).view(b, s, c.num_codebooks, c.cardinality).transpose(1, 2)

    # -- the plain forward ----------------------------------------------------------------

    def forward(
        self,
        seq: torch.Tensor,
        *,
        cross: torch.Tensor | None = None,
        cross_mask: torch.Tensor | None = None,
        prefix: torch.Tensor | None = None,
        frame: torch.Tensor | None = None,
    ) -> LMOutput:
        """Full (uncached) forward.

        seq: ``[B, K, S]`` token ids in ``[0, card]``. cross: ``[B, Sc, D]`` condition
        embeddings, cross_mask ``[B, Sc]`` bool (True = valid). prefix: ``[B, P, D]``
        embeddings prepended to the sequence (they take positions ``0..P-1``). frame:
        ``[B, F, D]`` added to the token embeddings (``frame[:, s]`` at sequence step s).
        Returns logits ``[B, K, S, card]``: position s predicts step s + 1.
        """
        x = self.embed_codes(seq)
        if frame is not None:
            x = x + self.frame_inputs(frame.to(x.dtype), 0, x.shape[1])
        p = 0
        if prefix is not None:
            p = prefix.shape[1]
            x = torch.cat([prefix.to(x.dtype), x], dim=1)
        hidden = self.backbone(x, cross_kv=self.cross_kv(cross, cross_mask, lazy=True))[:, p:]
        return LMOutput(logits=self.head(hidden), hidden=hidden)

    @property
    def compute_dtype(self) -> torch.dtype:
        """The float dtype activations and the KV cache use (int8 weights keep float norms)."""
        return self.out_norm.weight.dtype

    @property
    def num_parameters(self) -> int:
        return sum(t.numel() for t in self.parameters())
