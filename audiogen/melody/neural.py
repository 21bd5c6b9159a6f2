"""Neural melody models: a small LSTM and a small causal Transformer decoder over tokens.

Both map ids ``[B, S]`` to next-token logits ``[B, S, V]`` (position j predicts token j+1).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MelodyLSTM(nn.Module):
    """Embedding -> multi-layer LSTM -> linear head."""

    def __init__(self, *, vocab_size: int, dim: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.emb = nn.Embedding(vocab_size, dim)
        self.lstm = nn.LSTM(
            dim,
            dim,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[B, S]`` -> logits ``[B, S, V]``."""
        h, _ = self.lstm(self.drop(self.emb(ids)))
        return self.head(self.drop(h))


class _Block(nn.Module):
    """Pre-norm causal self-attention + GELU feed-forward."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim, bias=False), nn.GELU(), nn.Linear(ffn_dim, dim, bias=False)
        )
        self.dropout = dropout

    def forward(self, x: torch.Tensor, cache: list[torch.Tensor] | None = None) -> torch.Tensor:
        """x ``[B, S, D]``; ``cache``: ``[k, v]`` of earlier positions ``[B, H, P, D/H]``,
        extended in place (incremental decoding; S new positions after P cached ones)."""
        b, s, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, s, 3, self.num_heads, -1).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        causal = True
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
                causal = s > 1
                if causal:  # several new positions after a cache: explicit mask
                    p = k.shape[2] - s
                    causal = torch.ones(s, p + s, dtype=torch.bool, device=x.device).tril(p)
            cache[:] = [k, v]
        att = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=causal if isinstance(causal, torch.Tensor) else None,
            is_causal=causal is True,
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + F.dropout(
            self.proj(att.transpose(1, 2).reshape(b, s, d)), self.dropout, self.training
        )
        return x + F.dropout(self.ffn(self.norm2(x)), self.dropout, self.training)


class MelodyTransformer(nn.Module):
    """Token + learned position embeddings, pre-norm causal blocks, final norm, linear head."""

    def __init__(
        self,
        *,
        vocab_size: int,
        dim: int,
        num_layers: int,
        num_heads: int,
        ffn_dim: int,
        dropout: float,
        max_len: int,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.vocab_size, self.max_len = vocab_size, max_len
        self.emb = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(
            _Block(dim, num_heads, ffn_dim, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.emb.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(
        self, ids: torch.Tensor, cache: list[list[torch.Tensor]] | None = None
    ) -> torch.Tensor:
        """ids ``[B, S]`` -> logits ``[B, S, V]``; positions start after the cached ones.

        ``cache``: one ``[k, v]`` list per block (start with ``[[] for _ in blocks]``),
        extended in place; the total length may not exceed ``max_len``.
        """
        start = cache[0][0].shape[2] if cache is not None and cache[0] else 0
        s = ids.shape[1]
        if start + s > self.max_len:
            raise ValueError(f"{start + s} positions exceed max_len {self.max_len}")
        pos = torch.arange(start, start + s, device=ids.device)
        x = self.drop(self.emb(ids) + self.pos(pos))
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache[i])
        return self.head(self.norm(x))
