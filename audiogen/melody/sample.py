"""Constrained sampling of melody tokens: a well-formed REMI bar grammar, a monophonic line,
an exact number of bars, and optionally a key and a pitch range.

The grammar (after the conditions): ``Bar TimeSig (Position Pitch Duration)* Bar ...``,
positions increasing within a bar and never before the previous note ends. Masks are
applied to the model's log-probabilities before temperature and nucleus (top-p) sampling,
so a constraint never changes the model's preferences among the allowed tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from audiogen.melody.keys import Key
from audiogen.melody.model import Stepper
from audiogen.melody.tokens import CONDITION_LEN, MelodyTokenizer, get_tokenizer

STEPS_PER_BEAT = 12  # grid steps of a Position / Duration value of 1 beat


@dataclass(frozen=True)
class Constraints:
    """What a sampled melody must satisfy."""

    meter: tuple[int, int]
    bars: int | None = None  # exact bars (None: until EOS, at most ``max_bars``)
    max_bars: int = 64
    key: Key | None = None  # pitches restricted to the key's scale
    pitch_range: tuple[int, int] | None = None  # inclusive MIDI pitch range
    end_on_tonic: bool = False  # the last note is the key's tonic (needs key and bars)


class _State:
    """Where one row stands in the grammar (times in grid steps from the first bar line)."""

    def __init__(self, tok: MelodyTokenizer, c: Constraints) -> None:
        self.tok, self.c = tok, c
        self.bar_len = c.meter[0] * STEPS_PER_BEAT
        self.bars = 0  # bars started
        self.expect = "bar"  # bar | timesig | free | pitch | duration
        self.pos = -1  # last position in the current bar
        self.note_end = 0.0  # end of the previous note
        self.onset = 0.0  # onset of the note being written
        self.notes = 0
        self.last_pitch = -1
        self.done = False
        info = tok.info
        v = len(tok)
        self.kind, self.value = info.kind, info.value
        self.m_bar = np.zeros(v, bool)
        self.m_bar[tok.vocab["Bar_None"]] = True
        self.m_timesig = np.zeros(v, bool)
        self.m_timesig[tok.timesig_id(c.meter)] = True
        self.is_pos = self.kind == "Position"
        self.is_dur = self.kind == "Duration"
        self.m_pitch = self.kind == "Pitch"
        if c.key is not None:
            pcs = np.array(sorted(c.key.pitch_classes))
            self.m_pitch &= np.isin(self.value.astype(int) % 12, pcs)
        if c.pitch_range is not None:
            lo, hi = c.pitch_range
            self.m_pitch &= (self.value >= lo) & (self.value <= hi)
        self.limit = None if c.bars is None else c.bars * self.bar_len
        self.cadence = c.end_on_tonic and c.key is not None and self.limit is not None
        if self.cadence:
            self.m_tonic = self.m_pitch & (self.value.astype(int) % 12 == c.key.tonic)
            self.room = STEPS_PER_BEAT / 2  # kept free after a non-tonic note in the last bar

    @property
    def bar_start(self) -> float:
        return (self.bars - 1) * self.bar_len

    def mask(self) -> np.ndarray:
        """Allowed next ids ``[V]`` (bool)."""
        e = self.expect
        if e == "bar":
            return self.m_bar
        if e == "timesig":
            return self.m_timesig
        if e == "pitch":
            if self.cadence and self.limit - self.onset <= self.room:
                return self.m_tonic
            return self.m_pitch
        if e == "duration":
            m = self.is_dur.copy()
            if self.limit is not None:
                room = self.limit - self.onset
                if self.cadence and self.last_pitch % 12 != self.c.key.tonic:
                    room = min(room, max(room - self.room, 0))
                m &= self.value * STEPS_PER_BEAT <= room + 1e-6
            return m
        # free: a later position, the next bar, or the end
        pos = self.value
        start = max(self.pos + 1, self.note_end - self.bar_start)
        m = self.is_pos & (pos >= start - 1e-6) & (pos < self.bar_len)
        m = m | self.m_bar
        last_bar = self.c.bars is not None and self.bars >= self.c.bars
        m[self.tok.eos_id] = self.notes > 0 and (self.c.bars is None or last_bar)
        if last_bar and self.cadence and self.last_pitch % 12 != self.c.key.tonic:
            m[self.tok.vocab["Bar_None"]] = m[self.tok.eos_id] = False  # a tonic must follow
        return m

    def update(self, i: int) -> bool:
        """Consume id ``i``; returns False when it ends the melody (not part of it)."""
        k = self.kind[i]
        if i == self.tok.eos_id:
            self.done = True
            return False
        if k == "Bar":
            end_at = self.c.bars if self.c.bars is not None else self.c.max_bars
            if self.bars >= end_at:
                self.done = True
                return False
            self.bars += 1
            self.pos = -1
            self.expect = "timesig"
        elif k == "TimeSig":
            self.expect = "free"
        elif k == "Position":
            self.pos = int(self.value[i])
            self.onset = self.bar_start + self.pos
            self.expect = "pitch"
        elif k == "Pitch":
            self.last_pitch = int(self.value[i])
            self.expect = "duration"
        elif k == "Duration":
            self.note_end = self.onset + self.value[i] * STEPS_PER_BEAT
            self.notes += 1
            self.expect = "free"
        return True


def _top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability reaches ``top_p`` (per row)."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    drop = probs.cumsum(-1) - probs > top_p  # tokens after the nucleus is full
    sorted_logits = sorted_logits.masked_fill(drop, -torch.inf)
    return torch.full_like(logits, -torch.inf).scatter(-1, order, sorted_logits)


@torch.no_grad()
def sample_tokens(
    model: nn.Module,
    prefixes: list[list[int]],
    constraints: list[Constraints],
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    max_tokens: int = 4096,
) -> list[list[int]]:
    """Continue each prefix (conditions, maybe a primed melody; equal lengths) under its
    constraints; returns each full sequence (prefix included, ending with EOS)."""
    tok = get_tokenizer()
    if len({len(p) for p in prefixes}) != 1:
        raise ValueError("prefixes must have equal lengths")
    states = [_State(tok, c) for c in constraints]
    for st, p in zip(states, prefixes, strict=True):
        for i in p[CONDITION_LEN:]:
            st.update(int(i))
    gen = torch.Generator().manual_seed(seed)
    stepper = Stepper(model)
    logp = stepper.start(torch.tensor(prefixes, dtype=torch.long))
    out = [list(p) for p in prefixes]
    for _ in range(max_tokens):
        masks = torch.from_numpy(np.stack([s.mask() for s in states]))
        logits = logp.float().masked_fill(~masks, -torch.inf)
        logits = _top_p(logits / max(temperature, 1e-6), top_p)
        if temperature <= 1e-6:
            chosen = logits.argmax(-1)
        else:
            chosen = torch.multinomial(logits.softmax(-1), 1, generator=gen)[:, 0]
        for b, st in enumerate(states):
            if st.done:
                chosen[b] = tok.pad_id
                continue
            if not st.update(int(chosen[b])):
                chosen[b] = tok.pad_id
                out[b].append(tok.eos_id)
            else:
                out[b].append(int(chosen[b]))
        if all(s.done for s in states):
            break
        logp = stepper.advance(chosen)
    for b, st in enumerate(states):
        if not st.done:  # out of tokens: end the melody where it stands
            out[b].append(tok.eos_id)
    return out
