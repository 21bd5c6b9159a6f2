"""Monophonic melodies with key, meter and style: from the music21 corpus or MIDI files.

Times are in quarter notes (``onset``/``duration`` as floats); bar lines fall on multiples
of the bar length from time 0 (a pickup is shifted so its bar ends on the first bar line).
Extraction is deterministic; a corpus extraction is cached as JSON lines so training does
not re-parse music21 (slow: ~0.15 s per Essen tune).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from audiogen.errors import UserError
from audiogen.fileio import atomic_path, atomic_write_text
from audiogen.melody.keys import Key, estimate_key, key_from_signature

# Styles the models know, and the music21 corpus sources that provide them.
STYLES = ("irish", "english", "german", "chinese", "chorale", "none")
# source name -> (music21 corpus paths (composer/dir, optional file names), style)
SOURCES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "oneills": ("oneills1850", (), "irish"),
    "nottingham": ("nottingham-dataset", (), "english"),
    "essen-german": ("essenFolksong", ("altdeu10.abc", "altdeu20.abc"), "german"),
    "essen-chinese": ("essenFolksong", ("han1.abc",), "chinese"),
    "bach": ("bach", (), "chorale"),
}
METERS = ((2, 4), (3, 4), (4, 4), (5, 4), (2, 2), (3, 2), (3, 8), (6, 8), (9, 8), (12, 8))
PITCH_RANGE = (36, 96)  # MIDI pitches the tokenizer covers (inclusive)
EXTRACT_VERSION = 1  # bump when extraction changes, so old caches are not reused


@dataclass(frozen=True)
class MelodyNote:
    pitch: int  # MIDI number
    onset: float  # quarter notes from the first bar line
    duration: float  # quarter notes, > 0


@dataclass
class Melody:
    """A monophonic melody: notes sorted by onset without overlap, plus its conditions."""

    notes: list[MelodyNote]
    key: Key
    meter: tuple[int, int] = (4, 4)
    style: str = "none"
    name: str = ""
    tempo: float = 100.0  # quarter notes per minute (for writing MIDI / audio)
    extra: dict = field(default_factory=dict)

    @property
    def bar_length(self) -> float:
        """Bar length in quarter notes."""
        return self.meter[0] * 4.0 / self.meter[1]

    @property
    def end(self) -> float:
        return max((n.onset + n.duration for n in self.notes), default=0.0)

    @property
    def num_bars(self) -> int:
        """Bars spanned by the notes (a last partial bar counts)."""
        import math

        return max(1, math.ceil(self.end / self.bar_length - 1e-6))

    def transpose(self, semitones: int) -> Melody:
        notes = [MelodyNote(n.pitch + semitones, n.onset, n.duration) for n in self.notes]
        return Melody(
            notes, self.key.transpose(semitones), self.meter, self.style, self.name, self.tempo
        )

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "style": self.style,
            "key": [self.key.tonic, self.key.mode],
            "meter": list(self.meter),
            "tempo": self.tempo,
            "notes": [[n.pitch, n.onset, n.duration] for n in self.notes],
        }

    @classmethod
    def from_json(cls, d: dict) -> Melody:
        return cls(
            notes=[MelodyNote(int(p), float(o), float(u)) for p, o, u in d["notes"]],
            key=Key(int(d["key"][0]), str(d["key"][1])),
            meter=(int(d["meter"][0]), int(d["meter"][1])),
            style=str(d["style"]),
            name=str(d["name"]),
            tempo=float(d["tempo"]),
        )


def monophonic(notes: Iterable[tuple[int, float, float]]) -> list[MelodyNote]:
    """Sort by onset, keep the highest pitch per onset, cut a note where the next starts."""
    by_onset: dict[float, tuple[int, float]] = {}
    for p, o, d in notes:
        if d <= 0:
            continue
        if o not in by_onset or p > by_onset[o][0]:
            by_onset[o] = (int(p), float(d))
    onsets = sorted(by_onset)
    out = []
    for i, o in enumerate(onsets):
        p, d = by_onset[o]
        if i + 1 < len(onsets):
            d = min(d, onsets[i + 1] - o)
        out.append(MelodyNote(p, float(o), float(d)))
    return out


def _in_range(notes: list[MelodyNote]) -> bool:
    lo, hi = PITCH_RANGE
    return all(lo <= n.pitch <= hi for n in notes)


# ----------------------------------------------------------------------------- music21


def melody_from_score(score, *, style: str, name: str) -> Melody | None:
    """The first part of a music21 score as a :class:`Melody`; None if unusable.

    Unusable: no notes, a meter change (beyond a pickup), a meter outside :data:`METERS`,
    or pitches outside :data:`PITCH_RANGE`. Chords keep their top note; ties are merged.
    """
    from music21 import key as m21key
    from music21 import meter as m21meter

    parts = list(score.parts) if hasattr(score, "parts") and score.parts else [score]
    part = parts[0]
    measures = list(part.getElementsByClass("Measure"))
    shift = float(measures[0].paddingLeft) if measures else 0.0
    flat = part.flatten()
    raw: list[tuple[int, float, float]] = []
    tied = False  # the previous note is tied to the next (merged here: stripTies deep-copies)
    for n in flat.notes:
        ql = float(n.duration.quarterLength)
        if ql <= 0 or n.duration.isGrace:
            continue
        pitch, onset = max(p.midi for p in n.pitches), float(n.offset) + shift
        if tied and raw[-1][0] == pitch and abs(raw[-1][1] + raw[-1][2] - onset) < 1e-6:
            raw[-1] = (pitch, raw[-1][1], raw[-1][2] + ql)
        else:
            raw.append((pitch, onset, ql))
        tied = n.tie is not None and n.tie.type in ("start", "continue")
    notes = monophonic(raw)
    if len(notes) < 8 or not _in_range(notes):
        return None
    end = max(n.onset + n.duration for n in notes)
    sigs = [
        (float(ts.offset) + shift, (ts.numerator, ts.denominator))
        for ts in flat.getElementsByClass(m21meter.TimeSignature)
    ]
    if not sigs:
        return None
    spans: dict[tuple[int, int], float] = {}
    for i, (off, ratio) in enumerate(sigs):
        nxt = sigs[i + 1][0] if i + 1 < len(sigs) else end
        spans[ratio] = spans.get(ratio, 0.0) + max(0.0, nxt - off)
    meter = max(spans, key=lambda r: spans[r])
    bar = meter[0] * 4.0 / meter[1]
    if meter not in METERS or any(r != meter and s > bar + 1e-6 for r, s in spans.items()):
        return None
    sigs_k = list(flat.getElementsByClass(m21key.KeySignature))
    pitches = [n.pitch for n in notes]
    weights = [n.duration for n in notes]
    if sigs_k:
        key = key_from_signature(int(sigs_k[0].sharps), notes[-1].pitch, pitches)
    else:
        key = estimate_key(pitches, weights)
    return Melody(notes=notes, key=key, meter=meter, style=style, name=name)


def _corpus_files(source: str) -> list[Path]:
    from music21 import corpus

    directory, files, _ = SOURCES[source]
    paths = sorted(Path(p) for p in corpus.getComposer(directory))
    if files:
        paths = [p for p in paths if p.name in files]
    if source == "bach":
        paths = [p for p in paths if p.suffix in (".mxl", ".xml", ".krn")]
    return paths


def iter_source(source: str) -> Iterator[Melody]:
    """Melodies of one music21 corpus source (see :data:`SOURCES`), in a fixed order."""
    from music21 import converter, stream

    if source not in SOURCES:
        raise UserError(f"unknown melody source {source!r} (known: {', '.join(SOURCES)})")
    style = SOURCES[source][2]
    for path in _corpus_files(source):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                parsed = converter.parse(path)
            except Exception:  # a corpus file music21 itself cannot read
                continue
        scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
        for i, score in enumerate(scores):
            if source == "bach":
                names = [(p.partName or "").lower() for p in score.parts]
                if len(score.parts) != 4 or not names or "soprano" not in names[0]:
                    continue
            try:
                mel = melody_from_score(score, style=style, name=f"{source}/{path.name}#{i}")
            except Exception:  # malformed tunes in the corpus are skipped, not fatal
                mel = None
            if mel is not None:
                yield mel


# ----------------------------------------------------------------------------- MIDI


def melody_from_midi(path: str | os.PathLike) -> Melody:
    """The melody of a MIDI file: a track named like a melody, else the highest voice.

    Key: the file's key signature (mode from the final note), else estimated; meter: the
    first time signature (4/4 without one); style: a track named after one of
    :data:`STYLES`, else ``none``. Raises MidiError/UserError for bad files.
    """
    from audiogen.midi import MidiError, _read, highest_voice

    p = Path(path)
    pm = _read(p)
    tracks = [i for i in pm.instruments if not i.is_drum and i.notes]
    if not tracks:
        raise MidiError(f"{p}: has no melody (no pitched notes)")
    named = [i for i in tracks if any(w in (i.name or "").lower() for w in ("melody", "vocal"))]
    chosen = named[:1] or tracks
    from audiogen.midi import Note

    src = [Note(int(n.pitch), float(n.start), float(n.end)) for i in chosen for n in i.notes]
    src.sort(key=lambda n: (n.start, n.pitch))
    line = highest_voice(src)
    res = float(pm.resolution)
    raw = [
        (
            n.pitch,
            pm.time_to_tick(n.start) / res,
            (pm.time_to_tick(n.end) - pm.time_to_tick(n.start)) / res,
        )
        for n in line
    ]
    notes = monophonic(raw)
    if not notes:
        raise MidiError(f"{p}: has no melody (no notes with a duration)")
    lo, hi = PITCH_RANGE
    notes = [n for n in notes if lo <= n.pitch <= hi]
    if not notes:
        raise MidiError(f"{p}: has no melody in the pitch range {lo}..{hi}")
    ts = pm.time_signature_changes
    meter = (ts[0].numerator, ts[0].denominator) if ts else (4, 4)
    if meter not in METERS:
        meter = (4, 4)
    pitches = [n.pitch for n in notes]
    ks = pm.key_signature_changes
    if ks:
        k = int(ks[0].key_number)
        tonic, minor = k % 12, k >= 12
        major_tonic = (tonic + 3) % 12 if minor else tonic
        sharps = ((major_tonic * 7 + 6) % 12) - 6
        key = key_from_signature(sharps, notes[-1].pitch, pitches)
    else:
        key = estimate_key(pitches, [n.duration for n in notes])
    style = "none"
    for i in pm.instruments:
        if (i.name or "").strip().lower() in STYLES:
            style = i.name.strip().lower()
    tempo = float(pm.get_tempo_changes()[1][0]) if len(pm.get_tempo_changes()[1]) else 120.0
    return Melody(notes=notes, key=key, meter=meter, style=style, name=p.stem, tempo=tempo)


def write_midi(melody: Melody, path: str | os.PathLike, program: int = 73) -> Path:
    """Write a melody as a one-track MIDI file (atomically) with its key, meter and tempo.

    The track is named after the style, so :func:`melody_from_midi` reads the style back.
    The key signature is the key's accidentals (modal keys as their relative major).
    """
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=melody.tempo)
    spq = 60.0 / melody.tempo  # seconds per quarter note
    k = melody.key
    key_number = k.tonic + 12 if k.mode == "minor" else k.major_tonic
    pm.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*melody.meter, 0.0))
    inst = pretty_midi.Instrument(program=program, name=melody.style)
    for n in melody.notes:
        inst.notes.append(
            pretty_midi.Note(90, n.pitch, n.onset * spq, (n.onset + n.duration) * spq)
        )
    pm.instruments.append(inst)
    p = Path(path)
    with atomic_path(p) as tmp:
        pm.write(str(tmp))
    return p


def load_midi_dir(directory: str | os.PathLike) -> tuple[list[Melody], list[dict]]:
    """Melodies of every ``.mid``/``.midi`` file under a folder; unusable files are listed
    in the second value (``path``, ``reason``) instead of failing the whole folder."""
    root = Path(directory)
    if not root.is_dir():
        raise UserError(f"{root}: not a directory of MIDI files")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    if not files:
        raise UserError(f"{root}: no .mid files found")
    mels, failed = [], []
    for f in files:
        try:
            mels.append(melody_from_midi(f))
        except UserError as e:
            failed.append({"path": str(f), "reason": str(e)})
    if not mels:
        raise UserError(f"{root}: none of {len(files)} MIDI files has a usable melody")
    return mels, failed


# ----------------------------------------------------------------------------- dataset


def split_of(name: str, seed: int, valid: float, test: float) -> str:
    """``train`` / ``valid`` / ``test`` for a tune, from a hash of its name and the seed."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big") / 2**64
    return "test" if h < test else "valid" if h < test + valid else "train"


def cache_path(cache_dir: str | os.PathLike, sources: Iterable[str]) -> Path:
    tag = hashlib.sha256(json.dumps([EXTRACT_VERSION, sorted(sources)]).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"melodies_{tag}.jsonl"


def load_corpus(
    sources: Iterable[str], cache_dir: str | os.PathLike, *, progress: bool = False
) -> list[Melody]:
    """All melodies of the named sources (music21 sources or ``midi:DIR``), cached.

    The cache file is keyed by the sources and the extraction version; a corrupt or
    missing cache is rebuilt.
    """
    sources = list(sources)
    path = cache_path(cache_dir, sources)
    if path.is_file():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            return [Melody.from_json(json.loads(line)) for line in lines if line]
        except (ValueError, KeyError, TypeError):
            pass
    mels: list[Melody] = []
    for source in sources:
        if source.startswith("midi:"):
            mels += load_midi_dir(source[5:])[0]
            continue
        n0 = len(mels)
        for mel in iter_source(source):
            mels.append(mel)
            if progress and len(mels) % 100 == 0:
                print(f"{source}: {len(mels) - n0} melodies", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(m.to_json()) + "\n" for m in mels))
    return mels
