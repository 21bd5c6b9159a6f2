"""Seeded arrangements: instrumentation, tempo and transposition of a piece, and its MIDI.

An :class:`Instrument` is both a General MIDI program (for FluidSynth) and, where the DDSP
synth has one, a preset name; each renderer draws only instruments it can play.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiogen.data.sources import PieceMusic, QNote
from audiogen.data.styles import tempo_range
from audiogen.fileio import atomic_path


@dataclass(frozen=True)
class Instrument:
    """A playable instrument: caption name, GM program, DDSP preset, comfortable MIDI range."""

    name: str
    program: int
    preset: str | None
    low: int
    high: int


def _i(name: str, program: int, preset: str | None, low: int, high: int) -> Instrument:
    return Instrument(name, program, preset, low, high)


MELODY = [
    _i("fiddle", 40, "violin", 55, 100),
    _i("flute", 73, "flute", 60, 96),
    _i("tin whistle", 78, None, 74, 98),
    _i("accordion", 21, None, 53, 89),
    _i("harmonica", 22, None, 60, 84),
    _i("oboe", 68, "oboe", 58, 91),
    _i("clarinet", 71, "clarinet", 50, 89),
    _i("piano", 0, "piano", 48, 96),
    _i("banjo", 105, "plucked_string", 48, 84),
    _i("harp", 46, "plucked_string", 48, 96),
    _i("recorder", 74, None, 60, 96),
    _i("trumpet", 56, "trumpet", 55, 82),
    _i("french horn", 60, "horn", 41, 77),
    _i("vibraphone", 11, None, 53, 89),
    _i("marimba", 12, None, 48, 96),
    _i("alto saxophone", 65, None, 49, 81),
    _i("pan flute", 75, None, 60, 96),
    _i("organ", 19, "organ", 48, 96),
    _i("nylon-string guitar", 24, "plucked_string", 40, 84),
]
ACCOMPANIMENT = [
    _i("acoustic guitar", 25, "plucked_string", 40, 72),
    _i("piano", 0, "piano", 43, 72),
    _i("harp", 46, "plucked_string", 43, 79),
    _i("accordion", 21, None, 48, 76),
    _i("string ensemble", 48, None, 43, 76),
    _i("organ", 19, "organ", 43, 76),
    _i("electric piano", 4, None, 43, 76),
]
BASS = [
    _i("double bass", 32, "bass", 28, 52),
    _i("cello", 42, "cello", 36, 60),
    _i("bassoon", 70, "bassoon", 34, 60),
]
_V, _VA, _VC = _i("violin", 40, "violin", 55, 100), _i("viola", 41, None, 48, 84), BASS[1]
ENSEMBLES: dict[str, list[Instrument]] = {
    "string quartet": [_V, _V, _VA, _VC],
    "woodwind quartet": [MELODY[1], MELODY[5], MELODY[6], BASS[2]],
    "brass quartet": [
        MELODY[11],
        MELODY[12],
        _i("trombone", 57, None, 40, 72),
        _i("tuba", 58, "bass", 28, 58),
    ],
    "church organ": [MELODY[17]] * 4,
    "piano": [MELODY[7]] * 4,
    "choir": [_i("choir", 52, None, 40, 84)] * 4,
    "saxophone quartet": [
        _i(f"{s} saxophone", p, None, lo, hi)
        for s, p, lo, hi in (
            ("soprano", 64, 56, 88),
            ("alto", 65, 49, 81),
            ("tenor", 66, 44, 76),
            ("baritone", 67, 36, 69),
        )
    ],
    "string orchestra": [_i("string orchestra", 48, None, 36, 96)] * 4,
}
_DDSP_ENSEMBLES = {"string quartet", "woodwind quartet", "church organ", "piano"}
_FOLK = {"fiddle", "flute", "tin whistle", "accordion", "banjo", "harp", "piano", "harmonica"}


@dataclass
class Part:
    """One instrument's notes after transposition and octave fitting."""

    instrument: Instrument
    notes: list[QNote]
    role: str  # 'melody', 'voice', 'chords' or 'bass'


@dataclass
class Arrangement:
    """A seeded rendering plan. ``bpm`` counts felt beats; ``qpm`` quarter notes."""

    parts: list[Part]
    bpm: int
    qpm: float
    transpose: int
    tonic_pc: int
    mode: str
    ensemble: str | None = None
    texture: str = "solo"
    seconds: float = 0.0
    notes: int = field(default=0)


def _allowed(pool: list[Instrument], renderer: str) -> list[Instrument]:
    return [i for i in pool if renderer == "fluidsynth" or i.preset is not None]


def _fit(notes: list[QNote], inst: Instrument, shift: int) -> list[QNote]:
    """Transpose by ``shift`` then by whole octaves until the median sits in ``inst``'s range."""
    if not notes:
        return []
    med = float(np.median([n.pitch for n in notes])) + shift
    octave = 0
    while med + octave < inst.low + 5 and octave < 48:
        octave += 12
    while med + octave > inst.high - 5 and octave > -48:
        octave -= 12
    return [QNote(n.offset, n.duration, n.pitch + shift + octave, n.velocity) for n in notes]


def arrange(music: PieceMusic, *, rng: np.random.Generator, renderer: str) -> Arrangement:
    """Draw instrumentation, tempo and transposition for ``music`` from ``rng``."""
    lo, hi = tempo_range(music)
    bpm = int(rng.integers(lo, hi + 1))
    shift = int(rng.integers(-3, 4)) if len(music.voices) > 1 else int(rng.integers(-5, 7))
    parts: list[Part] = []
    ensemble, texture = None, "solo"
    if len(music.voices) > 1:
        names = [n for n in ENSEMBLES if renderer == "fluidsynth" or n in _DDSP_ENSEMBLES]
        ensemble = names[int(rng.integers(len(names)))]
        insts = ENSEMBLES[ensemble]
        if renderer == "ddsp" and ensemble == "string quartet":
            insts = [_V, _V, _VC, _VC]  # the DDSP presets have no viola
        for k, voice in enumerate(music.voices):
            inst = insts[min(k, len(insts) - 1)]
            parts.append(Part(inst, _fit(voice, inst, shift), "voice"))
        texture = "ensemble"
    else:
        pool = _allowed(MELODY, renderer)
        if music.genre in ("folk", "fiddle music") and rng.random() < 0.7:
            pool = [i for i in pool if i.name in _FOLK] or pool
        lead = pool[int(rng.integers(len(pool)))]
        if (
            lead.name == "fiddle"
            and music.origin not in ("Irish", None)
            and music.genre != "fiddle music"
        ):
            lead = Instrument("violin", lead.program, lead.preset, lead.low, lead.high)
        parts.append(Part(lead, _fit(music.voices[0], lead, shift), "melody"))
        roll = rng.random()
        if music.chords and roll < 0.75:
            acc = _allowed(ACCOMPANIMENT, renderer)
            acc = [i for i in acc if i.name != lead.name] or acc
            comp = acc[int(rng.integers(len(acc)))]
            parts.append(Part(comp, _fit(music.chords, comp, shift), "chords"))
            texture = "chords"
            if rng.random() < 0.5:
                bass_inst = _allowed(BASS, renderer)[
                    int(rng.integers(len(_allowed(BASS, renderer))))
                ]
                parts.append(Part(bass_inst, _fit(_roots(music.chords), bass_inst, shift), "bass"))
                texture = "band"
        elif roll < 0.55:
            others = [i for i in _allowed(MELODY, renderer) if i.name != lead.name]
            second = others[int(rng.integers(len(others)))]
            parts.append(Part(second, _fit(music.voices[0], second, shift), "melody"))
            texture = "duet"
    qpm = bpm * music.beat_ql
    arr = Arrangement(
        parts, bpm, qpm, shift, (music.tonic_pc + shift) % 12, music.mode, ensemble, texture
    )
    _humanize(arr, rng, beat_ql=music.beat_ql)
    return arr


def _roots(chord_tones: list[QNote]) -> list[QNote]:
    # Chord tones arrive grouped per symbol; the lowest of each group is the root position bass.
    by_onset: dict[float, QNote] = {}
    for n in chord_tones:
        if n.offset not in by_onset or n.pitch < by_onset[n.offset].pitch:
            by_onset[n.offset] = n
    return [QNote(n.offset, n.duration, n.pitch - 12, 70) for n in by_onset.values()]


def _humanize(arr: Arrangement, rng: np.random.Generator, *, beat_ql: float) -> None:
    """Velocity per role, a beat accent and a little jitter: lifeless MIDI sounds synthetic."""
    base = {"melody": 92, "voice": 80, "chords": 58, "bass": 72}
    for k, part in enumerate(arr.parts):
        level = base[part.role] - (8 if part.role == "melody" and k > 0 else 0)
        for n in part.notes:
            accent = 8 if abs(n.offset / beat_ql - round(n.offset / beat_ql)) < 1e-6 else 0
            n.velocity = int(np.clip(level + accent + rng.integers(-6, 7), 20, 127))


def write_midi(
    arr: Arrangement, path: str | os.PathLike, *, meter: str, max_seconds: float
) -> Path:
    """Write the arrangement as a MIDI file (one track per part, constant tempo), atomically.

    Sets ``arr.seconds`` (end of the last note) and ``arr.notes``; notes starting after
    ``max_seconds`` are dropped and later ones cut there.
    """
    import pretty_midi

    sec = 60.0 / arr.qpm
    pm = pretty_midi.PrettyMIDI(initial_tempo=arr.qpm)
    num, _, den = meter.partition("/")
    if num.isdigit() and den.isdigit():
        pm.time_signature_changes.append(pretty_midi.TimeSignature(int(num), int(den), 0.0))
    if arr.mode in ("major", "minor"):
        pm.key_signature_changes.append(
            pretty_midi.KeySignature(arr.tonic_pc + (12 if arr.mode == "minor" else 0), 0.0)
        )
    end, count = 0.0, 0
    for part in arr.parts:
        inst = pretty_midi.Instrument(program=part.instrument.program, name=part.instrument.name)
        for n in part.notes:
            start, stop = n.offset * sec, min((n.offset + n.duration) * sec, max_seconds)
            if start >= max_seconds or stop <= start or not 0 <= n.pitch <= 127:
                continue
            inst.notes.append(pretty_midi.Note(n.velocity, n.pitch, start, stop))
            end, count = max(end, stop), count + 1
        if inst.notes:
            pm.instruments.append(inst)
    arr.seconds, arr.notes = end, count
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(p) as tmp:
        pm.write(str(tmp))
    return p
