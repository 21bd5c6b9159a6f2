"""Melody tokens: miditok REMI (bar / time signature / position / pitch / duration) plus
condition tokens for key, meter and style.

A tune is ``[BOS, Key_*, Meter_*, Style_*, <REMI tokens>, EOS]``. The REMI part is exactly
what ``miditok.REMI`` writes for the melody as a one-track score; the condition tokens are
appended after miditok's vocabulary. The grid is 12 steps per beat for notes up to 4 beats
and 4 per beat up to 12 beats (a beat is the meter's denominator), so sixteenths and
triplets are exact.

    [S] ids of one tune, int; ``CONDITION_LEN`` condition ids (BOS included) come first.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from audiogen.errors import UserError
from audiogen.melody.data import METERS, PITCH_RANGE, STYLES, Melody, MelodyNote, monophonic
from audiogen.melody.keys import MODES, NAMES, Key

CONDITION_LEN = 4  # BOS, key, meter, style
TPQ = 480  # ticks per quarter of the scores handed to miditok (it resamples to its grid)
BEAT_RES = {(0, 4): 12, (4, 12): 4}


@dataclass(frozen=True)
class TokenInfo:
    """Per-id facts the constrained sampler needs (arrays indexed by token id)."""

    kind: np.ndarray  # [V] str: Bar, TimeSig, Position, Pitch, Duration, Key, Meter, Style, ...
    value: np.ndarray  # [V] float: pitch, position (grid steps), duration (beats) or -1
    meter: list[tuple[int, int] | None]  # [V] meter of TimeSig_* / Meter_* tokens


class MelodyTokenizer:
    """Melody <-> ids. Construct with no arguments: the vocabulary is fixed by this module."""

    def __init__(self) -> None:
        import miditok

        cfg = miditok.TokenizerConfig(
            pitch_range=(PITCH_RANGE[0], PITCH_RANGE[1] + 1),
            beat_res=BEAT_RES,
            use_velocities=False,
            use_time_signatures=True,
            use_rests=False,
            use_chords=False,
            use_tempos=False,
            special_tokens=["PAD", "BOS", "EOS"],
            time_signature_range=_ts_range(),
        )
        self.remi = miditok.REMI(cfg)
        self.base = len(self.remi)
        keys = [f"Key_{NAMES[t]}_{m}" for m in MODES for t in range(12)]
        meters = [f"Meter_{n}/{d}" for n, d in METERS]
        styles = [f"Style_{s}" for s in STYLES]
        self.cond_names = keys + meters + styles
        self.vocab: dict[str, int] = dict(self.remi.vocab)
        for i, name in enumerate(self.cond_names):
            self.vocab[name] = self.base + i
        self.names = [""] * len(self.vocab)
        for name, i in self.vocab.items():
            self.names[i] = name
        self.pad_id = self.vocab["PAD_None"]
        self.bos_id = self.vocab["BOS_None"]
        self.eos_id = self.vocab["EOS_None"]

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------------ conditions

    def key_id(self, key: Key) -> int:
        return self.vocab[f"Key_{NAMES[key.tonic]}_{key.mode}"]

    def meter_id(self, meter: tuple[int, int]) -> int:
        name = f"Meter_{meter[0]}/{meter[1]}"
        if name not in self.vocab:
            known = ", ".join(f"{n}/{d}" for n, d in METERS)
            raise UserError(f"unsupported meter {meter[0]}/{meter[1]} (choose one of {known})")
        return self.vocab[name]

    def style_id(self, style: str) -> int:
        if f"Style_{style}" not in self.vocab:
            raise UserError(f"unknown style {style!r} (choose one of {', '.join(STYLES)})")
        return self.vocab[f"Style_{style}"]

    def conditions(self, key: Key, meter: tuple[int, int], style: str) -> list[int]:
        """The ``CONDITION_LEN`` ids every tune starts with."""
        return [self.bos_id, self.key_id(key), self.meter_id(meter), self.style_id(style)]

    def timesig_id(self, meter: tuple[int, int]) -> int:
        return self.vocab[f"TimeSig_{meter[0]}/{meter[1]}"]

    # ------------------------------------------------------------------ encode / decode

    def encode(self, melody: Melody, *, eos: bool = True) -> list[int]:
        """Ids of a melody: conditions, REMI tokens of its notes, then EOS (if ``eos``)."""
        import symusic

        score = symusic.Score(TPQ)
        track = symusic.Track(program=0)
        for n in melody.notes:
            start = int(round(n.onset * TPQ))
            dur = max(1, int(round(n.duration * TPQ)))
            track.notes.append(symusic.Note(start, dur, n.pitch, 100))
        score.tracks.append(track)
        score.time_signatures.append(symusic.TimeSignature(0, *melody.meter))
        seq = self.remi.encode(score)
        seq = seq[0] if isinstance(seq, list) else seq
        ids = self.conditions(melody.key, melody.meter, melody.style) + list(seq.ids)
        return ids + [self.eos_id] if eos else ids

    def decode(self, ids: list[int], *, name: str = "", tempo: float = 100.0) -> Melody:
        """Melody from ids (conditions optional; missing ones default to C major, 4/4,
        none); PAD/BOS and anything after EOS are ignored."""
        key, meter, style = Key(0, "major"), None, "none"
        body = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            if i >= self.base:
                kind, _, val = self.names[i].partition("_")
                if kind == "Key":
                    tonic, mode = val.split("_")
                    key = Key(NAMES.index(tonic), mode)
                elif kind == "Meter":
                    n, d = val.split("/")
                    meter = (int(n), int(d))
                elif kind == "Style":
                    style = val
                continue
            body.append(i)
        notes: list[MelodyNote] = []
        if body:
            score = self.remi.decode([body])
            tpq = float(score.ticks_per_quarter)
            for tr in score.tracks:
                for n in tr.notes:
                    notes.append(MelodyNote(int(n.pitch), n.time / tpq, n.duration / tpq))
            if meter is None and len(score.time_signatures):
                ts = score.time_signatures[0]
                meter = (int(ts.numerator), int(ts.denominator))
        notes = monophonic((n.pitch, n.onset, n.duration) for n in notes)
        return Melody(notes, key, meter or (4, 4), style, name=name, tempo=tempo)

    # ------------------------------------------------------------------ facts per id

    @functools.cached_property
    def info(self) -> TokenInfo:
        v = len(self.names)
        kind = np.empty(v, dtype=object)
        value = np.full(v, -1.0)
        meter: list[tuple[int, int] | None] = [None] * v
        for i, name in enumerate(self.names):
            k, _, val = name.partition("_")
            kind[i] = k
            if k in ("Pitch", "Position"):
                value[i] = float(val)
            elif k == "Duration":
                a, b, r = (int(x) for x in val.split("."))
                value[i] = a + b / r
            elif k in ("TimeSig", "Meter"):
                n, d = val.split("/")
                meter[i] = (int(n), int(d))
        return TokenInfo(kind=kind, value=value, meter=meter)

    def ids_of(self, kind: str) -> np.ndarray:
        """All ids of one token kind, in vocabulary order."""
        return np.flatnonzero(self.info.kind == kind)

    def count_notes(self, ids) -> int:
        """Notes in an id sequence (Pitch tokens before EOS)."""
        pitch = self.info.kind == "Pitch"
        n = 0
        for i in ids:
            if int(i) == self.eos_id:
                break
            n += bool(pitch[int(i)])
        return n


def _ts_range() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for n, d in METERS:
        out.setdefault(d, []).append(n)
    return out


@functools.lru_cache(maxsize=1)
def get_tokenizer() -> MelodyTokenizer:
    """The (shared, immutable) melody tokenizer."""
    return MelodyTokenizer()
