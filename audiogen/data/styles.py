"""What a person would say about a piece: style, origin, tempo range, key names.

Facts come from the source itself (ABC ``R:`` rhythm, ``O:`` origin, ``N:`` tempo notes,
the title, the key and meter); tempo ranges are typical dance/performance tempi in beats
per minute of the felt beat.
"""

from __future__ import annotations

import re

from audiogen.data.sources import PieceMusic

# Typical tempi (felt beats per minute) by style, used to draw a rendering tempo.
TEMPO_RANGES = {
    "reel": (96, 120),
    "hornpipe": (72, 92),
    "jig": (100, 124),
    "slip jig": (100, 120),
    "slide": (110, 130),
    "strathspey": (60, 78),
    "highland fling": (70, 88),
    "clog": (80, 100),
    "polka": (104, 128),
    "march": (96, 116),
    "waltz": (120, 160),
    "air": (52, 76),
    "chorale": (60, 84),
    "folk song": (66, 108),
    "tune": (80, 112),
    "piece": (72, 120),
}
_HINTS = {"very slow": (44, 60), "slow": (52, 72), "moderate": (76, 100), "lively": (108, 132)}
_RHYTHMS = (
    ("double jig", "jig"),
    ("single jig", "jig"),
    ("slip jig", "slip jig"),
    ("slipjig", "slip jig"),
    ("highland fling", "highland fling"),
    ("fling", "highland fling"),
    ("reel", "reel"),
    ("hornpipe", "hornpipe"),
    ("jig", "jig"),
    ("slide", "slide"),
    ("strathspey", "strathspey"),
    ("clog", "clog"),
    ("polka", "polka"),
    ("march", "march"),
    ("waltz", "waltz"),
    ("air", "air"),
)
# Essen's German rhythm/genre labels, as English song kinds.
_ESSEN_KINDS = (
    ("kinder", "children's song"),
    ("wiegen", "lullaby"),
    ("liebes", "love song"),
    ("ballade", "ballad"),
    ("soldaten", "soldiers' song"),
    ("religi", "sacred song"),
    ("tanz", "dance song"),
    ("trink", "drinking song"),
    ("arbeit", "work song"),
)
_ORIGINS = (
    ("china", "Chinese"),
    ("luxemburg", "Luxembourgish"),
    ("lothringen", "Lorraine"),
    ("elsass", "Alsatian"),
    ("oesterreich", "Austrian"),
    ("schweiz", "Swiss"),
    ("niederlande", "Dutch"),
    ("irland", "Irish"),
    ("jugoslawien", "Yugoslav"),
    ("polen", "Polish"),
    ("frankreich", "French"),
    ("deutschland", "German"),
)
_SHARP_MAJOR = {0: "C", 1: "D♭", 2: "D", 3: "E♭", 4: "E", 5: "F", 6: "F♯", 7: "G", 8: "A♭"}
_SHARP_MAJOR |= {9: "A", 10: "B♭", 11: "B"}
_MINOR = {0: "C", 1: "C♯", 2: "D", 3: "E♭", 4: "E", 5: "F", 6: "F♯", 7: "G", 8: "G♯"}
_MINOR |= {9: "A", 10: "B♭", 11: "B"}


def key_name(tonic_pc: int, mode: str) -> str:
    """'D major', 'F♯ minor', 'A dorian': common spellings for each tonic."""
    names = _MINOR if mode in ("minor", "dorian", "phrygian", "aeolian") else _SHARP_MAJOR
    return f"{names[tonic_pc % 12].replace('♭', 'b').replace('♯', '#')} {mode}"


def style_from_text(text: str) -> str | None:
    t = text.lower()
    for word, style in _RHYTHMS:
        if re.search(rf"\b{word}s?\b", t):
            return style
    return None


def tempo_range(music: PieceMusic) -> tuple[int, int]:
    if music.tempo_hint in _HINTS:
        return _HINTS[music.tempo_hint]
    fallback = "folk song" if music.genre == "folk" else "tune"
    return TEMPO_RANGES.get(music.style, TEMPO_RANGES[fallback])


def describe_abc(music: PieceMusic, fields: dict[str, list[str]], source: str) -> None:
    """Fill title, style, origin, genre and tempo hint from an ABC tune's header."""
    music.title = re.sub(r"\s*--\s*.*$", "", (fields.get("T") or [""])[0]).strip()
    rhythm = " ".join(fields.get("R", []))
    title = " ".join(fields.get("T", []))
    notes = " ".join(fields.get("N", [])).lower()
    for hint in ("very slow", "slow", "moderate", "lively", "spirit"):
        if hint in notes:
            music.tempo_hint = "lively" if hint == "spirit" else hint
            break
    music.genre = "folk"
    if source == "essen":
        origin = " ".join(fields.get("O", [])).lower()
        music.origin = next((name for k, name in _ORIGINS if k in origin), None)
        kind = next((name for k, name in _ESSEN_KINDS if k in rhythm.lower()), None)
        music.style = kind or "folk song"
        return
    music.style = style_from_text(rhythm) or style_from_text(title) or "tune"
    if source == "oneills":
        music.origin = "Irish"
        if music.style == "tune":
            music.style = "air"  # O'Neill's 1850 is mostly airs and song tunes
    elif source == "ryans":
        music.origin = None  # Ryan's Mammoth mixes Irish, Scottish and American tunes
        music.genre = "fiddle music"
    elif source == "nottingham":
        music.origin = "English"
    # Reels and hornpipes written in 4/4 are felt in two.
    if music.style in ("reel", "hornpipe", "polka", "march") and music.meter in ("4/4", "2/2"):
        music.beat_ql = 2.0


def describe_bach(music: PieceMusic, stem: str) -> None:
    """A Bach chorale: title from the BWV number."""
    music.title = "Chorale BWV " + stem.removeprefix("bwv")
    music.style = "chorale"
    music.origin = None
    music.genre = "baroque"


def describe_midi(music: PieceMusic, pm) -> None:
    """Meter and key from a MIDI file's own events when it has them."""
    music.style = "piece"
    music.genre = "instrumental"
    if pm.time_signature_changes:
        ts = pm.time_signature_changes[0]
        music.meter = f"{ts.numerator}/{ts.denominator}"
        compound = ts.denominator == 8 and ts.numerator % 3 == 0 and ts.numerator > 3
        music.beat_ql = 1.5 if compound else 4.0 / ts.denominator
    if pm.key_signature_changes:
        k = pm.key_signature_changes[0].key_number  # 0..11 major, 12..23 minor
        music.tonic_pc, music.mode = k % 12, "major" if k < 12 else "minor"
    else:
        music.tonic_pc, music.mode = estimate_key(music)


# Krumhansl-Kessler key profiles (major, minor), C-based.
_KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def estimate_key(music: PieceMusic) -> tuple[int, str]:
    """Krumhansl-Schmuckler key estimate from duration-weighted pitch classes."""
    import numpy as np

    hist = np.zeros(12)
    for voice in music.voices:
        for n in voice:
            hist[n.pitch % 12] += n.duration
    best = (-2.0, 0, "major")
    for mode, prof in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
        for t in range(12):
            r = float(np.corrcoef(hist, np.roll(prof, t))[0, 1]) if hist.std() > 0 else 0.0
            if r > best[0]:
                best = (r, t, mode)
    return best[1], best[2]
