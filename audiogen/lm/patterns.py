"""Codebook interleaving patterns: how K parallel code streams become one LM sequence.

A pattern turns codes ``[B, K, F]`` (F codec frames) into an LM sequence ``[B, K, S]`` whose
step 0 is the special start token and where codebook ``k`` is shifted right by its delay.
Positions that hold no code (before a codebook's delay, after its last frame) carry the
special token, whose id is the codec cardinality. MusicGen's delay pattern is
``delays = [0, 1, ..., K-1]``; the stereo MusicGen interleaves left/right codebooks and
delays each pair together (``[0, 0, 1, 1, ...]``); the parallel pattern delays nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch


@dataclass
class PatternSequence:
    """An LM sequence built from codes.

    seq: ``[B, K, S]`` int64 token ids; special token where ``mask`` is False.
    mask: ``[B, K, S]`` bool, True where the position holds a code frame.
    """

    seq: torch.Tensor
    mask: torch.Tensor

    def __iter__(self) -> Iterator[torch.Tensor]:
        # Lets callers write ``seq, mask = pattern.build(codes)`` as the contract shows.
        return iter((self.seq, self.mask))


class DelayPattern:
    """Delay pattern: codebook ``k`` is shifted right by ``delays[k] + 1`` steps.

    ``S = F + max(delays) + 1``: one leading special step (the start token MusicGen feeds
    first), then codebook ``k`` holds frame ``f`` at step ``f + delays[k] + 1``.
    """

    def __init__(self, num_codebooks: int, *, delays: Sequence[int] | None = None) -> None:
        delays = list(range(num_codebooks)) if delays is None else [int(d) for d in delays]
        if len(delays) != num_codebooks:
            raise ValueError(f"{len(delays)} delays for {num_codebooks} codebooks")
        if any(d < 0 for d in delays):
            raise ValueError(f"delays must be >= 0, got {delays}")
        self.num_codebooks = num_codebooks
        self.delays = delays
        self.max_delay = max(delays)

    def seq_len(self, num_frames: int) -> int:
        """Sequence length S for F frames."""
        return num_frames + self.max_delay + 1

    def num_frames(self, seq_len: int) -> int:
        """Frames F that a sequence of length S holds."""
        return seq_len - self.max_delay - 1

    def valid_mask(self, seq_len: int, *, device: torch.device | str | None = None) -> torch.Tensor:
        """``[K, S]`` bool: True where codebook k holds a frame at step s."""
        steps = torch.arange(seq_len, device=device)[None]
        delay = torch.tensor(self.delays, device=device)[:, None]
        frame = steps - delay - 1
        return (frame >= 0) & (frame < self.num_frames(seq_len))

    def build(self, codes: torch.Tensor, *, special_token: int | None = None) -> PatternSequence:
        """Lay codes out on the pattern.

        codes: ``[B, K, F]`` int. Entries may be -1 (unknown, e.g. frames still to generate);
        they are copied as is. special_token: the id for empty positions; the caller must
        pass the codec cardinality.
        Returns seq ``[B, K, S]`` and mask ``[B, K, S]`` with ``S = F + max_delay + 1``.
        """
        if special_token is None:
            raise ValueError("special_token (the codec cardinality) is required")
        b, k, f = codes.shape
        if k != self.num_codebooks:
            raise ValueError(f"codes have {k} codebooks, pattern expects {self.num_codebooks}")
        s = self.seq_len(f)
        seq = codes.new_full((b, k, s), special_token)
        for cb, d in enumerate(self.delays):
            seq[:, cb, d + 1 : d + 1 + f] = codes[:, cb]
        mask = self.valid_mask(s, device=codes.device)[None].expand(b, k, s)
        return PatternSequence(seq=seq, mask=mask)

    def revert(self, seq: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`build`: ``seq [B, K, S] -> codes [B, K, F]``; works on logits too
        when given ``[B, K, S, ...]`` (trailing dims are carried)."""
        f = self.num_frames(seq.shape[2])
        if f < 0:
            raise ValueError(f"sequence of length {seq.shape[2]} is shorter than the pattern")
        parts = [seq[:, cb, d + 1 : d + 1 + f] for cb, d in enumerate(self.delays)]
        return torch.stack(parts, dim=1)


class ParallelPattern(DelayPattern):
    """All codebooks predicted at the same step (no delay): ``S = F + 1``."""

    def __init__(self, num_codebooks: int) -> None:
        super().__init__(num_codebooks, delays=[0] * num_codebooks)


def stereo_delays(num_codebooks: int) -> list[int]:
    """Delays of HF's stereo MusicGen: interleaved L/R codebooks, each pair delayed together."""
    if num_codebooks % 2:
        raise ValueError(f"stereo needs an even number of codebooks, got {num_codebooks}")
    return [k // 2 for k in range(num_codebooks)]
