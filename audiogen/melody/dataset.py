"""Training data for melody models: tunes as token ids, split by tune, augmented by
transposition and style dropout, every example a pure function of ``(seed, index)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from audiogen.errors import UserError
from audiogen.melody.data import PITCH_RANGE, Melody, load_corpus, split_of
from audiogen.melody.tokens import CONDITION_LEN, get_tokenizer

DEFAULT_SOURCES = ["oneills", "nottingham", "essen-german", "essen-chinese", "bach"]


@dataclass
class MelodyDataConfig:
    """The ``[data]`` section of a melody recipe."""

    sources: list[str] = field(default_factory=lambda: list(DEFAULT_SOURCES))
    cache_dir: str = "runs/melody_data"  # extracted melodies (JSON lines) are cached here
    max_tunes: int = 4000  # after filtering, in corpus order (all splits together)
    max_tokens: int = 1024  # tunes with more tokens are left out of every split
    valid: float = 0.05  # fractions of tunes, by a hash of the tune's name and the seed
    test: float = 0.05
    split: str = "train"
    transpose: int = 5  # examples transposed by -t..+t semitones (0: off)
    style_dropout: float = 0.1  # probability that an example's style is "none"
    window: int = 0  # > 0: longer tunes are cut to the conditions + a random window of them
    seed: int = 1234

    def __post_init__(self) -> None:
        if not 0 <= self.valid < 1 or not 0 <= self.test < 1 or self.valid + self.test >= 1:
            raise ValueError("data.valid and data.test must be fractions summing to < 1")
        if not 0 <= self.transpose <= 11:
            raise ValueError(f"data.transpose must be 0..11, got {self.transpose}")
        if self.window and self.window <= 2 * CONDITION_LEN:
            raise ValueError(f"data.window must be 0 or > {2 * CONDITION_LEN}")
        if self.split not in ("train", "valid", "test"):
            raise ValueError(f"data.split must be train, valid or test, got {self.split!r}")


def load_split(cfg: MelodyDataConfig, split: str | None = None) -> list[Melody]:
    """The tunes of one split (``cfg.split`` by default), deterministic for ``cfg.seed``."""
    tok = get_tokenizer()
    mels = load_corpus(cfg.sources, cfg.cache_dir)
    kept = []
    for m in mels:
        if len(kept) >= cfg.max_tunes:
            break
        if len(tok.encode(m)) <= cfg.max_tokens:
            kept.append(m)
    want = split or cfg.split
    out = [m for m in kept if split_of(m.name, cfg.seed, cfg.valid, cfg.test) == want]
    if not out:
        raise UserError(f"melody data: split {want!r} is empty ({len(kept)} tunes in all)")
    return out


@dataclass
class MelodyBatch:
    """ids ``[B, S]`` (PAD after each tune's EOS); lengths ``[B]`` real tokens per row."""

    ids: torch.Tensor
    lengths: torch.Tensor


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> MelodyBatch:
    s = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), s), pad_id, dtype=torch.long)
    for b, x in enumerate(seqs):
        ids[b, : len(x)] = torch.as_tensor(list(x), dtype=torch.long)
    return MelodyBatch(ids=ids, lengths=torch.tensor([len(x) for x in seqs]))


class MelodyData:
    """``len = tunes * (2 * transpose + 1)``: example i is tune ``i % tunes`` transposed by
    ``i // tunes - transpose`` semitones (clamped into the tokenizer's pitch range)."""

    def __init__(self, melodies: list[Melody], cfg: MelodyDataConfig) -> None:
        self.tok = get_tokenizer()
        self.cfg = cfg
        self.melodies = melodies
        self.shifts = 2 * cfg.transpose + 1

    def __len__(self) -> int:
        return len(self.melodies) * self.shifts

    def example(self, index: int) -> list[int]:
        mel = self.melodies[index % len(self.melodies)]
        shift = index // len(self.melodies) - self.cfg.transpose
        lo = min(n.pitch for n in mel.notes)
        hi = max(n.pitch for n in mel.notes)
        shift = int(np.clip(shift, PITCH_RANGE[0] - lo, PITCH_RANGE[1] - hi))
        rng = np.random.default_rng([self.cfg.seed, index])
        if rng.random() < self.cfg.style_dropout:
            mel = dataclasses.replace(mel, style="none")
        ids = self.tok.encode(mel.transpose(shift) if shift else mel)
        w = self.cfg.window
        if w and len(ids) > w:  # the conditions, then w - CONDITION_LEN consecutive tokens
            start = int(rng.integers(CONDITION_LEN, len(ids) - (w - CONDITION_LEN) + 1))
            ids = ids[:CONDITION_LEN] + ids[start : start + w - CONDITION_LEN]
        return ids

    def get_batch(self, indices: Sequence[int]) -> MelodyBatch:
        return pad_batch([self.example(int(i)) for i in indices], self.tok.pad_id)

    def all_sequences(self) -> list[list[int]]:
        """Every example once (for counting models)."""
        return [self.example(i) for i in range(len(self))]
