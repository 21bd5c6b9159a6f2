"""Symbolic pieces for the offline corpus: the music21 corpus and folders of MIDI files.

Each piece becomes a :class:`PieceMusic`: voices of notes in quarter lengths plus what a
person would say about it (title, key, meter, style, origin). Multi-tune ABC files (Essen,
Ryan's Mammoth, O'Neill's, Nottingham) are split on their ``X:`` lines so one tune parses
without parsing the whole book.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

SOURCES = ("bach", "essen", "ryans", "oneills", "nottingham")
_ABC_DIRS = {
    "essen": "essenFolksong",
    "ryans": "ryansMammoth",
    "oneills": "oneills1850",
    "nottingham": "nottingham-dataset",
}
_MIDI_SUFFIXES = (".mid", ".midi")


@dataclass(frozen=True)
class Piece:
    """A piece to render: ``piece_id`` is stable across runs and names its output files."""

    piece_id: str
    source: str
    path: str
    abc: str | None = None  # the tune's own ABC text, for multi-tune books


@dataclass
class QNote:
    """A note in score time: ``offset`` and ``duration`` in quarter lengths."""

    offset: float
    duration: float
    pitch: int
    velocity: int = 90


@dataclass
class PieceMusic:
    """Notes and facts of one piece, before arrangement.

    voices: melodic lines top to bottom (one for a tune, four for a chorale).
    chords: chord-symbol tones (an accompaniment part) when the source has them.
    beat_ql: the felt beat in quarter lengths (1.5 for a dotted quarter in 6/8).
    tonic_pc / mode: the key (pitch class 0..11, 'major', 'minor', 'dorian', ...).
    """

    title: str
    voices: list[list[QNote]]
    chords: list[QNote] = field(default_factory=list)
    tonic_pc: int = 0
    mode: str = "major"
    meter: str = "4/4"
    beat_ql: float = 1.0
    style: str = "tune"
    origin: str | None = None
    genre: str = "folk"
    tempo_hint: str | None = None


def music21_root() -> Path:
    from music21 import corpus

    return Path(corpus.__file__).parent


def list_pieces(source: str) -> list[Piece]:
    """Every piece of ``source`` (``music21:NAME`` or ``midi:DIR``), in a fixed order."""
    from audiogen.errors import UserError

    kind, _, name = source.partition(":")
    if kind == "midi":
        root = Path(name)
        if not root.is_dir():
            raise UserError(f"--source {source}: not a directory: {root}")
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _MIDI_SUFFIXES)
        if not files:
            raise UserError(f"--source {source}: no .mid/.midi files under {root}")
        return [
            Piece(f"midi/{p.relative_to(root).with_suffix('').as_posix()}", source, str(p))
            for p in files
        ]
    if kind != "music21" or name not in SOURCES:
        known = ", ".join(f"music21:{s}" for s in SOURCES)
        raise UserError(f"unknown corpus source {source!r} (use {known} or midi:DIR)")
    root = music21_root()
    if name == "bach":
        # The chorales are the bwv*.mxl files; the few .krn/.xml items are other works.
        files = sorted((root / "bach").glob("bwv*.mxl"), key=lambda p: _natural(p.name))
        return [Piece(f"bach/{p.stem}", source, str(p)) for p in files]
    pieces = []
    for path in sorted((root / _ABC_DIRS[name]).glob("*.abc")):
        if name == "essen" and path.stem.startswith("test"):
            continue  # music21's parser test files, not songs
        text = path.read_text(encoding="latin-1")
        header, tunes = _split_abc(text)
        seen: set[str] = set()
        for number, body in tunes:
            # Books repeat X: numbers now and then; keep ids unique and stable.
            pid = f"{name}/{path.stem}/{number}"
            while pid in seen:
                pid += "b"
            seen.add(pid)
            pieces.append(Piece(pid, source, str(path), abc=header + body))
    return pieces


def _split_abc(text: str) -> tuple[str, list[tuple[str, str]]]:
    """File header (text before the first X:) and (number, tune text) per tune."""
    blocks = re.split(r"(?m)^(?=X:)", text)
    header = blocks[0] if blocks and not blocks[0].startswith("X:") else ""
    # A file header may carry defaults (L:, M:) but not free text that breaks parsing.
    header = "".join(line for line in header.splitlines(True) if re.match(r"^[A-Z]:", line))
    tunes = []
    for b in blocks:
        m = re.match(r"X:\s*(\d+)", b)
        if m and re.search(r"(?m)^K:", b):
            tunes.append((m.group(1), b))
    return header, tunes


def _natural(s: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def abc_fields(abc: str) -> dict[str, list[str]]:
    """Header fields of one ABC tune: {'T': [...], 'R': [...], 'O': [...], 'N': [...]}."""
    out: dict[str, list[str]] = {}
    for m in re.finditer(r"(?m)^([A-Za-z]):\s*(.*?)\s*$", abc):
        out.setdefault(m.group(1), []).append(m.group(2).strip('"').strip())
    return out


def load_music(piece: Piece) -> PieceMusic:
    """Parse ``piece`` into notes and facts. Raises ValueError when it has no usable notes."""
    from audiogen.data.styles import describe_abc, describe_bach, describe_midi

    if piece.source.startswith("midi:"):
        return _load_midi(piece, describe_midi)
    from music21 import converter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if piece.abc is not None:
            score = converter.parse(piece.abc, format="abc")
        else:
            score = converter.parse(piece.path)
        music = _score_music(score)
    if piece.abc is not None:
        describe_abc(music, abc_fields(piece.abc), piece.source.split(":", 1)[1])
    else:
        describe_bach(music, Path(piece.path).stem)
    return music


def _score_music(score) -> PieceMusic:
    """Voices, chord symbols, key and meter of a music21 score (repeats expanded)."""
    from music21 import harmony, key, meter

    try:
        expanded = score.expandRepeats()
    except Exception:  # music21 rejects some irregular repeat structures; play them once
        expanded = score
    expanded = expanded.stripTies()
    parts = list(expanded.parts) or [expanded]
    voices, chords = [], []
    for part in parts:
        notes, symbols = [], []
        for el in part.flatten().notes:
            if isinstance(el, harmony.ChordSymbol):
                if not isinstance(el, harmony.NoChord):
                    symbols.append(el)
                continue
            dur = float(el.quarterLength)
            if dur <= 0:
                continue  # grace notes
            for p in el.pitches:
                notes.append(QNote(float(el.offset), dur, int(p.midi)))
        if notes:
            voices.append(sorted(notes, key=lambda n: (n.offset, -n.pitch)))
        chords += _chord_tones(symbols, end=float(part.highestTime))
    if not voices:
        raise ValueError("no notes")
    k = score.recurse().getElementsByClass(key.Key).first()
    if k is None:
        k = score.analyze("key")
    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    return PieceMusic(
        title="",
        voices=voices,
        chords=chords,
        tonic_pc=int(k.tonic.pitchClass),
        mode=str(k.mode or "major"),
        meter=ts.ratioString if ts is not None else "4/4",
        beat_ql=float(ts.beatDuration.quarterLength) if ts is not None else 1.0,
    )


def _chord_tones(symbols: list, end: float) -> list[QNote]:
    # A chord symbol lasts until the next one (or the end of the part).
    out = []
    for i, cs in enumerate(symbols):
        start = float(cs.offset)
        stop = float(symbols[i + 1].offset) if i + 1 < len(symbols) else end
        if stop <= start:
            continue
        for p in cs.pitches:
            out.append(QNote(start, stop - start, int(p.midi), velocity=60))
    return out


def _load_midi(piece: Piece, describe) -> PieceMusic:
    import pretty_midi

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(piece.path)
    except Exception as e:  # pretty_midi/mido raise many types on malformed files
        raise ValueError(f"malformed MIDI ({type(e).__name__}: {e})") from None
    _, tempi = pm.get_tempo_changes()
    qpm = float(tempi[0]) if len(tempi) else 120.0
    voices = []
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        notes = [
            QNote(n.start * qpm / 60, (n.end - n.start) * qpm / 60, int(n.pitch), int(n.velocity))
            for n in inst.notes
            if n.end > n.start
        ]
        if notes:
            voices.append(sorted(notes, key=lambda n: (n.offset, -n.pitch)))
    if not voices:
        raise ValueError("no pitched notes")
    music = PieceMusic(title=Path(piece.path).stem.replace("_", " "), voices=voices)
    describe(music, pm)
    return music


def source_name(source: str) -> str:
    """A folder-safe short name for a source ('music21:bach' → 'bach', 'midi:x' → 'midi')."""
    kind, _, name = source.partition(":")
    return name if kind == "music21" else "midi"


def slug(piece_id: str) -> str:
    """A file-name-safe form of a piece id."""
    return re.sub(r"[^A-Za-z0-9._/-]+", "_", piece_id).replace(os.sep, "/")
