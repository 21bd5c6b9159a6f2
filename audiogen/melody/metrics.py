"""Melody metrics: bits per note on given tunes, and statistics of samples against them.

- ``bits_per_note``: the tunes' total negative log2-likelihood under the model, conditions
  given (key, meter, style tokens are not scored; every token after them, the final EOS
  included, is), divided by the tunes' number of notes. All models share one tokenization,
  so the numbers compare across models (the tokens determine the melody exactly).
- ``in_key_ratio``: fraction of notes whose pitch class is in the melody's key scale
  (samples: the key they were conditioned on).
- ``pc_kl``, ``interval_kl``, ``duration_kl``: KL(tunes || samples) in bits between
  histograms of scale degree (pitch class relative to the key's tonic, 12 bins), melodic
  interval (semitones clipped to +-12, 25 bins) and duration (log2 quarter notes in
  half-octave bins from 1/16 to 8 quarter notes, 19 bins), each smoothed by 1e-3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from audiogen.melody.data import Melody
from audiogen.melody.model import token_log_probs
from audiogen.melody.tokens import CONDITION_LEN, get_tokenizer

_EPS = 1e-3


def in_key_ratio(mels: Sequence[Melody]) -> float:
    total = sum(len(m.notes) for m in mels)
    inside = sum(n.pitch % 12 in m.key.pitch_classes for m in mels for n in m.notes)
    return inside / max(total, 1)


def degree_hist(mels: Sequence[Melody]) -> np.ndarray:
    h = np.zeros(12)
    for m in mels:
        for n in m.notes:
            h[(n.pitch - m.key.tonic) % 12] += 1
    return h


def interval_hist(mels: Sequence[Melody]) -> np.ndarray:
    h = np.zeros(25)
    for m in mels:
        p = np.array([n.pitch for n in m.notes])
        if p.size > 1:
            np.add.at(h, np.clip(np.diff(p), -12, 12) + 12, 1)
    return h


def duration_hist(mels: Sequence[Melody]) -> np.ndarray:
    h = np.zeros(19)
    for m in mels:
        for n in m.notes:
            b = int(round((math.log2(max(n.duration, 1e-3)) + 4) * 2))
            h[min(max(b, 0), 18)] += 1
    return h


def kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in bits of two histograms, each smoothed by ``1e-3`` and normalised."""
    p = p / max(p.sum(), 1) + _EPS
    q = q / max(q.sum(), 1) + _EPS
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log2(p / q)))


def sample_stats(reference: Sequence[Melody], samples: Sequence[Melody]) -> dict[str, float]:
    return {
        "in_key_ratio": in_key_ratio(samples),
        "pc_kl": kl_bits(degree_hist(reference), degree_hist(samples)),
        "interval_kl": kl_bits(interval_hist(reference), interval_hist(samples)),
        "duration_kl": kl_bits(duration_hist(reference), duration_hist(samples)),
    }


@torch.no_grad()
def bits_per_note(model: nn.Module, mels: Sequence[Melody], batch_size: int = 16) -> float:
    """Total bits of the tunes' tokens after the conditions over their number of notes."""
    tok = get_tokenizer()
    seqs = [tok.encode(m) for m in mels]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths together
    nats, notes = 0.0, 0
    for i in range(0, len(order), batch_size):
        chunk = [seqs[j] for j in order[i : i + batch_size]]
        s = max(len(x) for x in chunk)
        ids = torch.full((len(chunk), s), tok.pad_id, dtype=torch.long)
        for b, x in enumerate(chunk):
            ids[b, : len(x)] = torch.tensor(x)
        lengths = torch.tensor([len(x) for x in chunk])
        lp = token_log_probs(model, ids)  # [B, S-1], target j+1
        pos = torch.arange(1, s)
        mask = (pos[None] >= CONDITION_LEN) & (pos[None] < lengths[:, None])
        nats -= float((lp * mask).sum())
        notes += sum(tok.count_notes(x) for x in chunk)
    return nats / math.log(2) / max(notes, 1)
