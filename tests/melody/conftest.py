"""Synthetic folk-like tunes (no corpus parsing) and a folder of them as MIDI files."""

from __future__ import annotations

import random

import pytest

from audiogen.melody.data import Melody, MelodyNote, write_midi
from audiogen.melody.keys import Key

# Rhythm cells per meter (quarter notes), each filling one bar.
_CELLS = {
    (4, 4): [[0.5] * 8, [1, 0.5, 0.5, 1, 1], [1.5, 0.5, 1, 1], [0.5, 0.5, 1, 2]],
    (6, 8): [[0.5] * 6, [1, 0.5, 1, 0.5], [1.5, 0.5, 0.5, 0.5], [1.5, 1.5]],
    (3, 4): [[1, 1, 1], [2, 1], [1, 0.5, 0.5, 1], [3]],
}


def make_tune(seed: int, key: Key, meter=(4, 4), bars: int = 8, style: str = "irish") -> Melody:
    """A stepwise tune in ``key``'s scale that ends on the tonic."""
    rng = random.Random(seed)
    scale = sorted(key.pitch_classes)
    base = 60 + key.tonic if key.tonic < 8 else 48 + key.tonic
    ladder = [base + 12 * o + (pc - key.tonic) % 12 for o in range(2) for pc in scale]
    ladder = sorted(set(ladder))
    i, t, notes = 4, 0.0, []
    bar_len = meter[0] * 4 / meter[1]
    for b in range(bars):
        cell = rng.choice(_CELLS[meter]) if b < bars - 1 else [bar_len]
        for d in cell:
            i = min(max(i + rng.choice([-2, -1, -1, 1, 1, 2, 0]), 0), len(ladder) - 1)
            notes.append(MelodyNote(ladder[i], t, d))
            t += d
    last = notes[-1]
    notes[-1] = MelodyNote(base, last.onset, last.duration)  # end on the tonic
    return Melody(notes=notes, key=key, meter=meter, style=style, name=f"tune{seed}")


def make_tunes(n: int = 24) -> list[Melody]:
    keys = [Key(2, "major"), Key(7, "major"), Key(9, "minor"), Key(4, "minor")]
    meters = [(4, 4), (6, 8), (3, 4)]
    return [make_tune(s, keys[s % 4], meters[s % 3], bars=8) for s in range(n)]


@pytest.fixture(scope="session")
def tunes() -> list[Melody]:
    return make_tunes()


@pytest.fixture(scope="session")
def midi_dir(tunes, tmp_path_factory):
    d = tmp_path_factory.mktemp("tunes")
    for m in tunes:
        write_midi(m, d / f"{m.name}.mid")
    return d
