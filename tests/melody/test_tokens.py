"""Tokenization (miditok REMI + condition tokens), keys and MIDI round trips."""

from __future__ import annotations

import random

import pytest

from audiogen.errors import UserError
from audiogen.melody.data import Melody, MelodyNote, melody_from_midi, write_midi
from audiogen.melody.keys import Key, estimate_key, key_from_signature, parse_key
from audiogen.melody.tokens import CONDITION_LEN, get_tokenizer


def _random_melody(seed: int, meter: tuple[int, int]) -> Melody:
    """Notes on the tokenizer's grid: 1/12 beat up to 4 beats (sixteenths, triplets)."""
    rng = random.Random(seed)
    beat = 4.0 / meter[1]  # quarter notes per beat
    t, notes = rng.choice([0, 3, 6]) / 12 * beat, []
    for _ in range(40):
        d = rng.choice([3, 4, 6, 8, 12, 18, 24, 36]) / 12 * beat
        t += rng.choice([0, 0, 0, 4]) / 12 * beat  # occasional rest
        notes.append(MelodyNote(rng.randint(40, 92), t, d))
        t += d
    return Melody(notes, Key(rng.randrange(12), "minor"), meter, "german")


@pytest.mark.parametrize("meter", [(4, 4), (6, 8), (3, 4), (9, 8)])
def test_round_trip_pitches_onsets_durations(meter):
    tok = get_tokenizer()
    mel = _random_melody(sum(meter), meter)
    ids = tok.encode(mel)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    names = [tok.names[i] for i in ids]
    assert names[1:CONDITION_LEN] == [
        f"Key_{mel.key.name.replace(' ', '_')}",
        f"Meter_{meter[0]}/{meter[1]}",
        "Style_german",
    ]
    assert names[CONDITION_LEN] == "Bar_None" and names[CONDITION_LEN + 1].startswith("TimeSig")
    back = tok.decode(ids)
    assert [n.pitch for n in back.notes] == [n.pitch for n in mel.notes]
    assert [n.onset for n in back.notes] == pytest.approx([n.onset for n in mel.notes], abs=1e-9)
    assert [n.duration for n in back.notes] == pytest.approx(
        [n.duration for n in mel.notes], abs=1e-9
    )
    assert (back.key, back.meter, back.style) == (mel.key, mel.meter, mel.style)
    assert tok.count_notes(ids) == len(mel.notes)


def test_off_grid_times_snap_to_the_grid():
    tok = get_tokenizer()
    mel = Melody([MelodyNote(60, 0.01, 0.49), MelodyNote(62, 0.52, 0.5)], Key(0), (4, 4))
    back = tok.decode(tok.encode(mel))
    grid = 1 / 12
    for a, b in zip(back.notes, mel.notes, strict=True):
        assert a.pitch == b.pitch
        assert abs(a.onset - b.onset) <= grid / 2 + 1e-9
        assert abs(a.onset / grid - round(a.onset / grid)) < 1e-9


@pytest.mark.parametrize(
    "text,mode,key",
    [
        ("D", None, Key(2, "major")),
        ("F# minor", None, Key(6, "minor")),
        ("Bbm", None, Key(10, "minor")),
        ("A dorian", None, Key(9, "dorian")),
        ("Gmix", None, Key(7, "mixolydian")),
        ("E", "minor", Key(4, "minor")),
        ("c sharp major", None, Key(1, "major")),
    ],
)
def test_parse_key(text, mode, key):
    assert parse_key(text, mode) == key


@pytest.mark.parametrize("text", ["H# major", "D lydianish", "", "Dx"])
def test_unknown_key_is_a_user_error(text):
    with pytest.raises(UserError, match="unknown"):
        parse_key(text)


def test_key_signatures_and_modes():
    assert Key(2, "major").sharps == 2 and Key(5, "major").sharps == -1
    assert Key(9, "dorian").sharps == 1 and Key(7, "mixolydian").sharps == 0
    assert Key(9, "minor").pitch_classes == Key(0, "major").pitch_classes
    # the final's degree in the signature's scale names the mode
    assert key_from_signature(1, 69, [69]) == Key(9, "dorian")
    assert key_from_signature(2, 62, [62]) == Key(2, "major")
    assert key_from_signature(-1, 62, [62]) == Key(2, "minor")
    assert key_from_signature(0, 67, [67]) == Key(7, "mixolydian")
    assert estimate_key([60, 64, 67, 60, 65, 67, 71, 72], [2, 1, 1, 2, 1, 1, 1, 2]) == Key(0)


def test_midi_round_trip_keeps_key_meter_style(tunes, tmp_path):
    tok = get_tokenizer()
    for mel in tunes[:6]:
        path = write_midi(mel, tmp_path / f"{mel.name}.mid")
        back = melody_from_midi(path)
        assert (back.key, back.meter, back.style) == (mel.key, mel.meter, mel.style)
        assert tok.encode(back) == tok.encode(mel)
