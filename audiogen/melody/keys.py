"""Keys and modes: parsing user text, scales, and a deterministic key for a melody.

A key is a tonic pitch class (0 = C) and one of :data:`MODES`. The melody models know four
modes (the common ones of the folk and chorale data); the other church modes found in
sources are folded onto the nearest of them (lydian -> major, phrygian/locrian -> minor).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audiogen.errors import UserError

MODES = ("major", "minor", "dorian", "mixolydian")
# Semitone steps of each mode's scale from its tonic.
SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
# Church mode on each degree of a major scale (the mode a final on that degree implies).
_DEGREE_MODE = {0: "major", 2: "dorian", 4: "minor", 5: "major", 7: "mixolydian", 9: "minor"}
_DEGREE_MODE[11] = "minor"  # locrian, folded
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ALIASES = {
    "maj": "major",
    "major": "major",
    "ionian": "major",
    "lydian": "major",
    "m": "minor",
    "min": "minor",
    "minor": "minor",
    "aeolian": "minor",
    "phrygian": "minor",
    "locrian": "minor",
    "dor": "dorian",
    "dorian": "dorian",
    "mix": "mixolydian",
    "mixo": "mixolydian",
    "mixolydian": "mixolydian",
}
# Krumhansl-Kessler key profiles (probe-tone ratings), major and minor.
_KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


@dataclass(frozen=True)
class Key:
    """A tonic pitch class (0 = C .. 11 = B) and a mode from :data:`MODES`."""

    tonic: int
    mode: str = "major"

    def __post_init__(self) -> None:
        if not 0 <= self.tonic < 12 or self.mode not in MODES:
            raise ValueError(f"bad key ({self.tonic}, {self.mode!r})")

    @property
    def name(self) -> str:
        return f"{NAMES[self.tonic]} {self.mode}"

    @property
    def pitch_classes(self) -> frozenset[int]:
        """The seven pitch classes of the key's scale."""
        return frozenset((self.tonic + s) % 12 for s in SCALES[self.mode])

    @property
    def sharps(self) -> int:
        """Accidentals of the key signature: > 0 sharps, < 0 flats (-6..5, F# major as -6)."""
        major_tonic = (self.tonic - SCALES["major"][_mode_degree(self.mode)]) % 12
        return ((major_tonic * 7 + 6) % 12) - 6

    @property
    def major_tonic(self) -> int:
        """Tonic of the major key with the same signature (the relative major)."""
        return (self.tonic - SCALES["major"][_mode_degree(self.mode)]) % 12

    def transpose(self, semitones: int) -> Key:
        return Key((self.tonic + semitones) % 12, self.mode)


def _mode_degree(mode: str) -> int:
    """Index of the major-scale degree the mode starts on (major 0, dorian 1, ...)."""
    return {"major": 0, "dorian": 1, "mixolydian": 4, "minor": 5}[mode]


def parse_key(text: str, mode: str | None = None) -> Key:
    """Parse ``"D"``, ``"D major"``, ``"F#m"``, ``"Bb minor"``, ``"A dorian"``, ``"Gmix"``.

    ``mode`` (if given) overrides a mode in the text. Raises UserError naming the text.
    """
    m = re.fullmatch(
        r"\s*([A-Ga-g])\s*(#|b|♯|♭|-?sharp|-?flat)?\s*([A-Za-z]*)\s*", text.replace("-", " ")
    )
    if not m:
        raise UserError(f"unknown key {text!r} (expected e.g. 'D', 'F# minor', 'Bb major')")
    letter, acc, rest = m.group(1).upper(), (m.group(2) or "").strip(), m.group(3).lower()
    tonic = _LETTERS[letter] + {"#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1}.get(
        acc, 0
    )
    if rest and rest not in _ALIASES:
        raise UserError(f"unknown key {text!r}: unknown mode {rest!r}")
    name = _ALIASES.get(rest, "major")
    if mode is not None:
        if mode.lower() not in _ALIASES:
            raise UserError(f"unknown mode {mode!r} (choose one of {', '.join(MODES)})")
        name = _ALIASES[mode.lower()]
    return Key(tonic % 12, name)


def key_from_signature(sharps: int, final_pitch: int | None, pitches: Sequence[int]) -> Key:
    """The key of a melody with ``sharps`` in its signature that ends on ``final_pitch``.

    Folk and chorale melodies end on their tonic; the final's degree in the signature's
    major scale names the mode (1 major, 2 dorian, 5 mixolydian, 6 minor). A final outside
    the signature's scale falls back to :func:`estimate_key` on ``pitches``.
    """
    major_tonic = (7 * sharps) % 12
    if final_pitch is not None:
        degree = (final_pitch - major_tonic) % 12
        if degree in _DEGREE_MODE:
            mode = _DEGREE_MODE[degree]
            if degree == 5:  # lydian: folded to the major key of the signature
                return Key(major_tonic, "major")
            if degree == 11:  # locrian: folded to the relative minor
                return Key((major_tonic + 9) % 12, "minor")
            return Key(final_pitch % 12, mode)
    return estimate_key(pitches)


def estimate_key(pitches: Sequence[int], weights: Sequence[float] | None = None) -> Key:
    """Krumhansl-Schmuckler key estimate (major/minor) from pitches (weighted by duration)."""
    if len(pitches) == 0:
        return Key(0, "major")
    hist = np.zeros(12)
    w = np.ones(len(pitches)) if weights is None else np.asarray(weights, dtype=float)
    np.add.at(hist, np.asarray(pitches) % 12, w)
    best, best_r = Key(0, "major"), -np.inf
    for mode, prof in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
        for tonic in range(12):
            r = np.corrcoef(hist, np.roll(prof, tonic))[0, 1]
            if np.isfinite(r) and r > best_r:
                best, best_r = Key(tonic, mode), r
    return best
