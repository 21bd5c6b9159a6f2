"""MIDI → notes (pretty_midi), melody line extraction, and frame-level features from notes.

Times are in seconds, pitches are MIDI numbers (69 = A4 = 440 Hz). Frame features are
``[F, D]`` numpy arrays at a given frame rate (frames per second).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiogen.errors import UserError
from audiogen.fileio import atomic_path

# Pitch-class code for "no note sounding" in per-frame pitch-class arrays (0..11 are C..B).
REST_PITCH_CLASS = 12


class MidiError(UserError):
    """A MIDI file that cannot be used: unreadable, malformed, or without pitched notes."""


@dataclass(frozen=True)
class Note:
    """One note event. ``start``/``end`` in seconds, ``velocity`` in 1..127."""

    pitch: int
    start: float
    end: float
    velocity: int = 100
    program: int = 0
    is_drum: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Track:
    """An instrument track of a MIDI file (pretty_midi's ``Instrument``)."""

    index: int
    name: str
    program: int
    is_drum: bool
    num_notes: int


@dataclass
class Controls:
    """Frame-rate synth controls for a monophonic line.

    f0_hz: [F] fundamental in Hz (held through rests at the last pitch, so glides don't jump).
    loudness: [F] in 0..1 from note velocity, 0 in rests.
    gate: [F] 1.0 while a note sounds, else 0.0.
    frame_rate: frames per second.
    """

    f0_hz: np.ndarray
    loudness: np.ndarray
    gate: np.ndarray
    frame_rate: float


def midi_to_hz(pitch: float | np.ndarray) -> float | np.ndarray:
    """Equal-tempered frequency of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


def _read(path: str | os.PathLike):
    import pretty_midi

    p = Path(path)
    if not p.exists():
        raise MidiError(f"{p}: no such file")
    if p.is_dir():
        raise MidiError(f"{p}: is a directory, expected a MIDI file")
    with open(p, "rb") as f:
        head = f.read(4)
    if head != b"MThd":
        raise MidiError(f"{p}: not a MIDI file (no 'MThd' header)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(str(p))
    except Exception as e:  # mido/pretty_midi raise many types on malformed data
        detail = f"{type(e).__name__}: {e}" if str(e) else f"{type(e).__name__}, truncated?"
        raise MidiError(f"{p}: malformed MIDI ({detail})") from None


def list_tracks(path: str | os.PathLike) -> list[Track]:
    """The instrument tracks of a MIDI file, in file order."""
    pm = _read(path)
    return [
        Track(i, inst.name or f"track {i}", int(inst.program), bool(inst.is_drum), len(inst.notes))
        for i, inst in enumerate(pm.instruments)
    ]


def load_notes(
    path: str | os.PathLike, track: int | None = None, melody: bool = False
) -> list[Note]:
    """Pitched (non-drum) notes of a MIDI file, sorted by (start, pitch).

    Args:
        track: keep only this instrument track (index as in :func:`list_tracks`).
        melody: reduce to the highest voice (skyline) after track selection.

    Raises MidiError naming the file when it is malformed, the track does not exist, or
    there are no pitched notes.
    """
    pm = _read(path)
    insts = list(enumerate(pm.instruments))
    if track is not None:
        if not 0 <= track < len(insts):
            raise MidiError(
                f"{path}: track {track} does not exist (the file has {len(insts)} tracks)"
            )
        insts = [insts[track]]
    notes = [
        Note(int(n.pitch), float(n.start), float(n.end), int(n.velocity), int(i.program), i.is_drum)
        for _, i in insts
        if not i.is_drum
        for n in i.notes
        if n.end > n.start
    ]
    if not notes:
        where = f"track {track}" if track is not None else "the file"
        raise MidiError(f"{path}: {where} has no pitched notes")
    notes.sort(key=lambda n: (n.start, n.pitch))
    return highest_voice(notes) if melody else notes


def highest_voice(notes: list[Note]) -> list[Note]:
    """The skyline melody: at every instant, the highest sounding note.

    A note interrupted by a higher one and still sounding afterwards resumes as a new
    note (without a new attack in the source, but with its own start time here).
    """
    if not notes:
        return []
    bounds = sorted({t for n in notes for t in (n.start, n.end)})
    order = sorted(range(len(notes)), key=lambda i: notes[i].start)
    active: list[int] = []
    nxt = 0
    pieces: list[tuple[int, float, float]] = []  # (note index, start, end)
    for t0, t1 in zip(bounds[:-1], bounds[1:], strict=False):
        while nxt < len(order) and notes[order[nxt]].start <= t0:
            active.append(order[nxt])
            nxt += 1
        active = [i for i in active if notes[i].end > t0]
        if not active:
            continue
        top = max(active, key=lambda i: (notes[i].pitch, -notes[i].start))
        if pieces and pieces[-1][0] == top and pieces[-1][2] == t0:
            pieces[-1] = (top, pieces[-1][1], t1)
        else:
            pieces.append((top, t0, t1))
    out = []
    for i, s, e in pieces:
        n = notes[i]
        out.append(Note(n.pitch, s, e, n.velocity, n.program, n.is_drum))
    return out


def end_time(notes: list[Note]) -> float:
    """Time (s) at which the last note ends."""
    return max((n.end for n in notes), default=0.0)


def _frame_span(n: Note, frame_rate: float) -> tuple[int, int]:
    return int(round(n.start * frame_rate)), max(
        int(round(n.end * frame_rate)), int(round(n.start * frame_rate)) + 1
    )


def controls(notes: list[Note], frame_rate: float, duration: float | None = None) -> Controls:
    """Frame-rate f0 / loudness / gate for a monophonic line (use :func:`highest_voice`).

    Overlapping notes are resolved by the later onset. ``duration`` (s) defaults to the
    end of the last note.
    """
    dur = end_time(notes) if duration is None else duration
    num = max(1, int(np.ceil(dur * frame_rate)))
    pitch = np.full(num, np.nan)
    loud = np.zeros(num, dtype=np.float32)
    for n in sorted(notes, key=lambda n: n.start):
        a, b = _frame_span(n, frame_rate)
        pitch[a:b] = n.pitch
        loud[a:b] = n.velocity / 127.0
    gate = np.isfinite(pitch).astype(np.float32)
    # Hold the last pitch through rests (and the first through leading silence).
    if gate.any():
        idx = np.where(np.isfinite(pitch), np.arange(num), 0)
        np.maximum.accumulate(idx, out=idx)
        first = int(np.argmax(gate))
        idx[:first] = first
        pitch = pitch[idx]
    else:
        pitch[:] = 69.0
    f0 = midi_to_hz(pitch).astype(np.float32)
    return Controls(f0_hz=f0, loudness=loud * gate, gate=gate, frame_rate=float(frame_rate))


def chroma(
    notes: list[Note], frame_rate: float, num_frames: int | None = None, start: float = 0.0
) -> np.ndarray:
    """Exact note chroma ``[F, 12]``: the fraction of each frame that each pitch class sounds.

    Frame ``f`` covers ``[start + f / frame_rate, start + (f + 1) / frame_rate)``. Values
    are in 0..1 (several notes of one pitch class do not add beyond 1).
    """
    if num_frames is None:
        num_frames = max(1, int(np.ceil((end_time(notes) - start) * frame_rate)))
    out = np.zeros((num_frames, 12), dtype=np.float32)
    edges = start + np.arange(num_frames + 1) / frame_rate
    for n in notes:
        if n.end <= edges[0] or n.start >= edges[-1]:
            continue
        a = max(0, int(np.floor((n.start - start) * frame_rate)))
        b = min(num_frames, int(np.ceil((n.end - start) * frame_rate)))
        lo = np.maximum(edges[a:b], n.start)
        hi = np.minimum(edges[a + 1 : b + 1], n.end)
        cover = np.clip((hi - lo) * frame_rate, 0.0, 1.0)
        pc = n.pitch % 12
        out[a:b, pc] = np.minimum(out[a:b, pc] + cover, 1.0)
    return out


def piano_roll(notes: list[Note], frame_rate: float, num_frames: int | None = None) -> np.ndarray:
    """Velocity piano roll ``[128, F]`` (0..1), frame ``f`` at time ``f / frame_rate``."""
    if num_frames is None:
        num_frames = max(1, int(np.ceil(end_time(notes) * frame_rate)))
    roll = np.zeros((128, num_frames), dtype=np.float32)
    for n in notes:
        a, b = _frame_span(n, frame_rate)
        roll[n.pitch, a:b] = np.maximum(roll[n.pitch, a:b], n.velocity / 127.0)
    return roll


def draw_piano_roll(ax, notes: list[Note], frame_rate: float = 100.0) -> None:
    """Draw non-empty ``notes`` as a piano roll (pitch against seconds) on matplotlib ``ax``,
    cropped to their pitch range."""
    roll = piano_roll(notes, frame_rate)
    lo = max(0, min(n.pitch for n in notes) - 2)
    hi = min(127, max(n.pitch for n in notes) + 2)
    ax.imshow(
        roll[lo : hi + 1],
        origin="lower",
        aspect="auto",
        cmap="magma_r",
        extent=(0, roll.shape[1] / frame_rate, lo - 0.5, hi + 0.5),
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")


def save_piano_roll(
    notes: list[Note], path: str | os.PathLike, frame_rate: float = 100.0, title: str = ""
) -> Path:
    """Draw the notes as a piano roll and write a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not notes:
        raise MidiError(f"{path}: no notes to draw")
    fig, ax = plt.subplots(figsize=(10, 3.5), dpi=100)
    draw_piano_roll(ax, notes, frame_rate)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    p = Path(path)
    try:
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return p


def save_notes(
    notes: list[Note], path: str | os.PathLike, program: int | None = None, tempo: float = 120.0
) -> Path:
    """Write notes to a single-track (or per-program) MIDI file atomically."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    by_prog: dict[tuple[int, bool], pretty_midi.Instrument] = {}
    for n in notes:
        prog = n.program if program is None else program
        key = (prog, n.is_drum)
        if key not in by_prog:
            by_prog[key] = pretty_midi.Instrument(program=prog, is_drum=n.is_drum)
        by_prog[key].notes.append(pretty_midi.Note(n.velocity, n.pitch, n.start, n.end))
    pm.instruments.extend(by_prog.values())
    p = Path(path)
    with atomic_path(p) as tmp:
        pm.write(str(tmp))
    return p
