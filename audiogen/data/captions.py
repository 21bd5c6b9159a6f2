"""Captions for rendered pieces, worded the way a person describes music.

Every fact in a caption is true of the audio: the key after transposition, the meter, the
rendered tempo and the instruments actually used. Wording varies (seeded) so a text model
does not learn one template.
"""

from __future__ import annotations

import numpy as np

from audiogen.data.arrange import Arrangement
from audiogen.data.sources import PieceMusic
from audiogen.data.styles import key_name, tempo_range


def _a(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _join(names: list[str]) -> str:
    names = list(dict.fromkeys(names))  # unique, in order
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def instrument_phrase(arr: Arrangement) -> str:
    """'solo fiddle', 'fiddle and flute', 'flute with guitar accompaniment', 'a string quartet'."""
    if arr.ensemble:
        return _a(arr.ensemble) if arr.ensemble != "piano" else "solo piano"
    lead = arr.parts[0].instrument.name
    if arr.texture == "solo":
        return f"solo {lead}"
    if arr.texture == "duet":
        return _join([p.instrument.name for p in arr.parts])
    comp = [p.instrument.name for p in arr.parts[1:]]
    return f"{lead} with {_join(comp)} accompaniment"


def tempo_word(music: PieceMusic, bpm: int, rng: np.random.Generator) -> str | None:
    """'slow' / 'lively' where the tempo is at either end of what the style allows."""
    if music.tempo_hint in ("slow", "very slow"):
        return music.tempo_hint
    lo, hi = tempo_range(music)
    rel = (bpm - lo) / max(1, hi - lo)
    if bpm < 72 or rel < 0.3:
        return ["slow", "relaxed", "gentle"][int(rng.integers(3))]
    if rel > 0.7:
        return ["lively", "brisk", "spirited"][int(rng.integers(3))]
    return None


def instrument_names(arr: Arrangement) -> list[str]:
    """The distinct instruments, for the manifest's ``instruments`` field."""
    return list(dict.fromkeys(p.instrument.name for p in arr.parts))


def caption(music: PieceMusic, arr: Arrangement, rng: np.random.Generator) -> str:
    """One caption: style, origin, key, meter, tempo and instrumentation of the rendering."""
    key = key_name(arr.tonic_pc, arr.mode)
    what = music.style
    if music.style == "chorale":
        what = "four-part Bach chorale" if len(arr.parts) == 4 else "Bach chorale"
    elif music.origin:
        what = f"{music.origin} {what}"
    word = tempo_word(music, arr.bpm, rng)
    noun = f"{word} {what}" if word else what
    played = instrument_phrase(arr)
    on = "arranged for" if arr.ensemble else "played on"
    if played.startswith("solo "):
        on = "for"
    meter = music.meter if music.meter != "none" else None
    forms = [
        f"{_a(noun)} in {key} {on} {played}, {arr.bpm} bpm",
        f"{_a(noun)} in {key}"
        + (f", {meter} time" if meter else "")
        + f", {on} {played} at {arr.bpm} bpm",
        f"{played} playing {_a(noun)} in {key}"
        + (f" ({meter}, {arr.bpm} bpm)" if meter else f" at {arr.bpm} bpm"),
    ]
    if music.title:
        forms.append(f'"{music.title}", {_a(noun)} in {key} {on} {played}, {arr.bpm} bpm')
    text = forms[int(rng.integers(len(forms)))]
    return text
