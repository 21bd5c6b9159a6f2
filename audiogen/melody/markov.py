"""Order-n Markov chain over melody tokens with interpolated Witten-Bell backoff.

For a context ``h`` of the ``k`` previous tokens (k = n .. 1) and a token ``x``::

    p_k(x | h) = (c(h, x) + b_k T(h) p_{k-1}(x | h')) / (c(h) + b_k T(h))   if c(h) > 0
               = p_{k-1}(x | h')                                            otherwise
    p_0(x)     = (c(x) + 1) / (N + V)

with ``c`` the training counts, ``T(h)`` the number of distinct tokens seen after ``h``,
``h'`` the context without its oldest token. Every level sums to one over the vocabulary,
so the chain is a proper distribution. ``b_k`` (one per order, 1 = plain Witten-Bell) are
the only trained parameters: the training loop fits them on leave-one-out likelihood of the
training tunes (each token scored with its own occurrence removed from the counts), which
is deleted interpolation done by gradient descent.

Counts live in sorted int64 key tables (a context of up to 6 tokens and its next token
packed in 9 bits each), saved with the weights as safetensors buffers.

    ids: [B, S] int64 token ids; the first ``CONDITION_LEN`` are the tune's conditions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

BITS = 9  # bits per token id in a packed key (vocabularies up to 512)
MAX_ORDER = 6  # 7 packed ids fit in 63 bits


def _context_keys(arr: np.ndarray, order: int) -> list[np.ndarray]:
    """Packed keys of the 1..order previous tokens at every position of ``arr [..., S]``.

    ``arr`` must be left-padded with ``order`` PAD ids; returns ``order`` arrays shaped like
    ``arr[..., order:]`` (position j's context is ``arr[..., j-k:j]``).
    """
    s = arr.shape[-1] - order
    keys, acc = [], np.zeros(arr.shape[:-1] + (s,), dtype=np.int64)
    for k in range(1, order + 1):
        acc = acc + (arr[..., order - k : order - k + s].astype(np.int64) << (BITS * (k - 1)))
        keys.append(acc)
    return keys


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at the positions of ``query`` in the sorted ``keys``; 0 where absent."""
    if keys.size == 0:
        return np.zeros(query.shape, dtype=np.int64)
    idx = np.searchsorted(keys, query)
    idx_c = np.minimum(idx, keys.size - 1)
    found = keys[idx_c] == query
    return np.where(found, values[idx_c], 0)


class MarkovModel(nn.Module):
    """Witten-Bell interpolated Markov chain; build with :meth:`fit` or from saved tables."""

    def __init__(
        self,
        *,
        vocab_size: int,
        order: int,
        pad_id: int,
        scored_from: int,
        tables: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= order <= MAX_ORDER or vocab_size > 2**BITS:
            raise ValueError(f"order must be 1..{MAX_ORDER} and vocab_size <= {2**BITS}")
        self.vocab_size, self.order, self.pad_id = vocab_size, order, pad_id
        self.scored_from = scored_from  # first scored position (the conditions are given)
        self.log_beta = nn.Parameter(torch.zeros(order))
        tables = tables or {}
        self.register_buffer(
            "unigram", tables.get("unigram", torch.zeros(vocab_size, dtype=torch.long))
        )
        empty = torch.zeros(0, dtype=torch.long)
        for k in range(1, order + 1):
            for name in ("ngram_keys", "ngram_counts", "ctx_keys", "ctx_total", "ctx_types"):
                self.register_buffer(f"{name}_{k}", tables.get(f"{name}_{k}", empty.clone()))
        self._np: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ counting

    @classmethod
    def fit(
        cls,
        sequences: Sequence[Sequence[int]],
        *,
        vocab_size: int,
        order: int,
        pad_id: int,
        scored_from: int,
        min_count: int = 1,
    ) -> MarkovModel:
        """Count the n-grams of ``sequences``; n-grams with a context of >= 2 tokens seen
        fewer than ``min_count`` times are dropped (their contexts' totals exclude them)."""
        targets, ctx = [], [[] for _ in range(order)]
        for seq in sequences:
            arr = np.concatenate([np.full(order, pad_id), np.asarray(seq, dtype=np.int64)])
            keys = _context_keys(arr, order)
            sl = slice(scored_from, None)
            targets.append(arr[order:][sl])
            for k in range(order):
                ctx[k].append(keys[k][sl])
        x = np.concatenate(targets)
        tables = {"unigram": torch.from_numpy(np.bincount(x, minlength=vocab_size))}
        for k in range(1, order + 1):
            h = np.concatenate(ctx[k - 1])
            ng, counts = np.unique((h << BITS) + x, return_counts=True)
            if k >= 2 and min_count > 1:
                keep = counts >= min_count
                ng, counts = ng[keep], counts[keep]
            hk = ng >> BITS
            ck, first = np.unique(hk, return_index=True)
            total = np.add.reduceat(counts, first) if ng.size else np.zeros(0, np.int64)
            types = np.diff(np.append(first, ng.size))
            for name, arr in (
                ("ngram_keys", ng),
                ("ngram_counts", counts),
                ("ctx_keys", ck),
                ("ctx_total", total),
                ("ctx_types", types),
            ):
                tables[f"{name}_{k}"] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.int64))
        return cls(
            vocab_size=vocab_size,
            order=order,
            pad_id=pad_id,
            scored_from=scored_from,
            tables=tables,
        )

    def num_ngrams(self) -> int:
        return sum(int(getattr(self, f"ngram_keys_{k}").numel()) for k in range(1, self.order + 1))

    def _tables(self) -> dict[str, np.ndarray]:
        if self._np is None:
            self._np = {k: v.cpu().numpy() for k, v in self.named_buffers()}
        return self._np

    def _apply(self, fn, *args, **kwargs):  # the numpy view is rebuilt after .to()/loads
        self._np = None
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        self._np = None
        return super().load_state_dict(*args, **kwargs)

    # ------------------------------------------------------------------ probabilities

    def _interpolate(
        self, uni: torch.Tensor, levels: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        """Probabilities from per-order counts (``c(h,x), c(h), T(h)`` float tensors)."""
        t = self._tables()
        n_tokens = float(t["unigram"].sum())
        p = (uni + 1.0) / (n_tokens + self.vocab_size)
        beta = self.log_beta.float().exp()
        for k, (c, total, types) in enumerate(levels):
            w = beta[k] * types
            ok = (total > 0) & (types > 0)
            p = torch.where(ok, (c + w * p) / torch.where(ok, total + w, 1.0), p)
        return p

    def _counts(self, keys: list[np.ndarray], x: np.ndarray, loo: bool):
        t = self._tables()
        uni = t["unigram"][x].astype(np.float64)
        levels = []
        for k in range(1, self.order + 1):
            h = keys[k - 1]
            c = _lookup(t[f"ngram_keys_{k}"], t[f"ngram_counts_{k}"], (h << BITS) + x)
            total = _lookup(t[f"ctx_keys_{k}"], t[f"ctx_total_{k}"], h)
            types = _lookup(t[f"ctx_keys_{k}"], t[f"ctx_types_{k}"], h)
            if loo:  # remove this occurrence (only if it was counted: pruned ones were not)
                seen = c > 0
                types = types - (seen & (c == 1))
                total, c = total - seen, c - seen
            levels.append(tuple(torch.from_numpy(a.astype(np.float32)) for a in (c, total, types)))
        if loo:
            uni = uni - 1.0
        return torch.from_numpy(uni.astype(np.float32)), levels

    def token_log_probs(self, ids: torch.Tensor, *, loo: bool = False) -> torch.Tensor:
        """``log p(ids[:, j] | ids[:, :j])`` for j >= 1: ``[B, S-1]`` (natural log).

        ``loo``: leave-one-out counts (the tokens are training data already counted).
        """
        arr = ids.detach().cpu().numpy().astype(np.int64)
        pad = np.full(arr.shape[:-1] + (self.order,), self.pad_id, dtype=np.int64)
        arr = np.concatenate([pad, arr], axis=-1)
        keys = [k[..., 1:] for k in _context_keys(arr, self.order)]
        x = arr[..., self.order + 1 :]
        uni, levels = self._counts(keys, x, loo)
        p = self._interpolate(uni, levels)
        return p.clamp_min(1e-30).log().to(ids.device)

    def next_log_probs(self, ids: torch.Tensor) -> torch.Tensor:
        """Log-distribution of the token after ``ids [B, S]``: ``[B, V]``."""
        arr = ids.detach().cpu().numpy().astype(np.int64)
        arr = arr[:, -self.order :]
        if arr.shape[1] < self.order:
            pad = np.full((arr.shape[0], self.order - arr.shape[1]), self.pad_id, np.int64)
            arr = np.concatenate([pad, arr], axis=1)
        arr = np.concatenate([arr, np.zeros((arr.shape[0], 1), np.int64)], axis=1)
        keys = [k[:, :1] for k in _context_keys(arr, self.order)]  # [B, 1] each
        x = np.broadcast_to(np.arange(self.vocab_size), (arr.shape[0], self.vocab_size))
        keys = [np.broadcast_to(k, x.shape) for k in keys]
        uni, levels = self._counts(keys, x, loo=False)
        with torch.no_grad():
            p = self._interpolate(uni, levels)
        return p.clamp_min(1e-30).log().to(ids.device)
