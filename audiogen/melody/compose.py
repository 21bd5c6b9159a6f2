"""Compose a melody from a short description: conditions from the text (and flags), then
constrained sampling from a melody model; optional continuation of a primed melody."""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass

from audiogen.errors import UserError
from audiogen.melody.data import METERS, STYLES, Melody, MelodyNote
from audiogen.melody.keys import Key, parse_key
from audiogen.melody.model import LoadedModel
from audiogen.melody.sample import Constraints, sample_tokens
from audiogen.melody.tokens import CONDITION_LEN, get_tokenizer

DEFAULT_RANGE = (55, 84)  # G3..C6: a fiddle's or flute's comfortable melody range
# tune type -> (meter, tempo in quarter notes per minute)
TUNE_TYPES = {
    "slip jig": ((9, 8), 180.0),
    "jig": ((6, 8), 180.0),
    "reel": ((2, 2), 200.0),  # as O'Neill's notates reels (cut time)
    "hornpipe": ((4, 4), 150.0),
    "strathspey": ((4, 4), 130.0),
    "polka": ((2, 4), 220.0),
    "slide": ((12, 8), 200.0),
    "waltz": ((3, 4), 150.0),
    "mazurka": ((3, 4), 150.0),
    "march": ((2, 4), 120.0),
    "chorale": ((4, 4), 80.0),
    "hymn": ((4, 4), 80.0),
}
_STYLE_WORDS = {
    "irish": "irish",
    "celtic": "irish",
    "english": "english",
    "german": "german",
    "chinese": "chinese",
    "chorale": "chorale",
    "hymn": "chorale",
    "bach": "chorale",
}


@dataclass(frozen=True)
class Request:
    """Resolved conditions of a composition."""

    key: Key
    meter: tuple[int, int]
    style: str
    tempo: float


def parse_meter(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    meter = (int(m.group(1)), int(m.group(2))) if m else None
    if meter not in METERS:
        known = ", ".join(f"{n}/{d}" for n, d in METERS)
        raise UserError(f"unsupported meter {text!r} (choose one of {known})")
    return meter


def parse_range(text: str) -> tuple[int, int]:
    """``"55-84"`` or note names ``"G3-C6"`` -> inclusive MIDI pitches (at least an octave)."""
    import pretty_midi

    parts = text.split("-") if text.count("-") == 1 else []
    try:
        lo, hi = (
            int(p) if p.strip().isdigit() else pretty_midi.note_name_to_number(p.strip())
            for p in parts
        )
    except ValueError:
        raise UserError(f"--range {text!r}: expected LOW-HIGH, e.g. 55-84 or G3-C6") from None
    if not (36 <= lo and hi <= 96 and hi - lo >= 12):
        raise UserError(f"--range {text!r}: needs at least an octave within 36..96")
    return lo, hi


def parse_description(text: str) -> dict:
    """Key, meter, style and tempo named in a description (only those it names).

    ``"an Irish reel in D major"`` -> style irish, meter 4/4, tempo 200, key D major.
    """
    low = text.lower()
    out: dict = {}
    m = re.search(
        r"\bin\s+([a-g](?:#|b|♯|♭|\s+sharp|\s+flat)?)"
        r"(?:\s+(major|minor|dorian|mixolydian))?\b",
        low,
    )
    if m:
        out["key"] = parse_key(m.group(1), m.group(2))
    for word, (meter, tempo) in TUNE_TYPES.items():
        if re.search(rf"\b{word}s?\b", low):
            out["meter"], out["tempo"] = meter, tempo
            break
    for word, style in _STYLE_WORDS.items():
        if re.search(rf"\b{word}\b", low):
            out["style"] = style
            break
    m = re.search(r"\b(\d+)\s*/\s*(\d+)\b", low)
    if m and (int(m.group(1)), int(m.group(2))) in METERS:
        out["meter"] = (int(m.group(1)), int(m.group(2)))
    return out


def resolve_request(
    description: str = "",
    *,
    key: str | None = None,
    mode: str | None = None,
    meter: str | None = None,
    style: str | None = None,
    tempo: float | None = None,
    prime: Melody | None = None,
) -> Request:
    """Conditions from flags, else the description, else the prime, else defaults."""
    found = parse_description(description)
    if key is not None:
        k = parse_key(key, mode)
    elif "key" in found:
        k = found["key"] if mode is None else parse_key(found["key"].name.split()[0], mode)
    elif prime is not None:
        k = prime.key if mode is None else parse_key(prime.key.name.split()[0], mode)
    else:
        k = parse_key("D" if found.get("style") == "irish" else "C", mode)
    if meter is not None:
        mt = parse_meter(meter)
    else:
        mt = found.get("meter") or (prime.meter if prime is not None else (4, 4))
    st = style if style is not None else found.get("style", "none")
    if st not in STYLES:
        raise UserError(f"unknown style {st!r} (choose one of {', '.join(STYLES)})")
    tp = tempo if tempo is not None else found.get("tempo", prime.tempo if prime else 120.0)
    if not 20 <= tp <= 400:
        raise UserError(f"tempo {tp} is outside 20..400 quarter notes per minute")
    return Request(key=k, meter=mt, style=st, tempo=float(tp))


@dataclass
class Composition:
    melody: Melody
    tokens: list[int]
    seconds: float  # wall time of sampling
    prime_notes: int


def compose(
    model: LoadedModel,
    request: Request,
    *,
    bars: int = 16,
    prime: Melody | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 0.95,
    pitch_range: tuple[int, int] | None = DEFAULT_RANGE,
    in_key: bool = True,
) -> Composition:
    """Sample a melody of exactly ``bars`` bars (after a prime's bars, when given).

    Pitches stay in ``request.key``'s scale and the melody ends on its tonic (unless
    ``in_key`` is False) and in ``pitch_range``; the last note is held to the final bar
    line so the melody ends on a complete bar.
    """
    if not 1 <= bars <= 256:
        raise UserError(f"--bars {bars}: choose 1..256")
    if temperature < 0 or not 0 < top_p <= 1:
        raise UserError("--temperature must be >= 0 and --top-p in (0, 1]")
    tok = get_tokenizer()
    cond = (
        dataclasses.replace(prime, key=request.key, meter=request.meter, style=request.style)
        if prime
        else None
    )
    if cond is not None:
        prefix = tok.encode(cond, eos=False)
        prime_bars = cond.num_bars
        prime_notes = len(tok.decode(prefix).notes)
    else:
        prefix = tok.conditions(request.key, request.meter, request.style)
        prime_bars, prime_notes = 0, 0
    total = prime_bars + bars
    c = Constraints(
        meter=request.meter,
        bars=total,
        key=request.key if in_key else None,
        pitch_range=pitch_range,
        end_on_tonic=in_key,
    )
    start = time.perf_counter()
    ids = sample_tokens(
        model.model, [prefix], [c], temperature=temperature, top_p=top_p, seed=seed
    )[0]
    seconds = time.perf_counter() - start
    mel = tok.decode(ids, tempo=request.tempo)
    bar_len = mel.bar_length
    if mel.notes:
        last = mel.notes[-1]
        mel.notes[-1] = MelodyNote(last.pitch, last.onset, total * bar_len - last.onset)
    mel.name = "composed"
    assert mel.key == request.key and len(ids) > CONDITION_LEN
    return Composition(melody=mel, tokens=ids, seconds=seconds, prime_notes=prime_notes)
