import numpy as np
import pretty_midi
import pytest

from audiogen import midi


def test_load_notes_skips_drums_and_sorts(melody_mid):
    notes = midi.load_notes(melody_mid)
    assert [n.pitch for n in notes] == [36, 60, 64, 67, 72]
    assert all(not n.is_drum for n in notes)
    assert [n.start for n in notes] == sorted(n.start for n in notes)


def test_tracks_and_track_selection(melody_mid):
    tracks = midi.list_tracks(melody_mid)
    assert [(t.name, t.program, t.is_drum) for t in tracks] == [
        ("flute", 73, False),
        ("bass", 32, False),
        ("drums", 0, True),
    ]
    assert [n.pitch for n in midi.load_notes(melody_mid, track=1)] == [36]
    with pytest.raises(midi.MidiError, match="track 7 does not exist"):
        midi.load_notes(melody_mid, track=7)
    with pytest.raises(midi.MidiError, match="track 2 has no pitched notes"):
        midi.load_notes(melody_mid, track=2)


def test_highest_voice_is_skyline(melody_mid):
    mel = midi.load_notes(melody_mid, melody=True)
    # The bass note sounds under the whole melody, and in the gaps between its notes.
    top = [n.pitch for n in mel if n.pitch != 36]
    assert top == [60, 64, 67, 72]
    for a, b in zip(mel, mel[1:], strict=False):
        assert a.end <= b.start + 1e-9


def test_chroma_matches_pretty_midi(melody_mid):
    pm = pretty_midi.PrettyMIDI(str(melody_mid))
    fs = 50
    notes = midi.load_notes(melody_mid)
    ours = midi.chroma(notes, fs)
    ref = pm.get_chroma(fs=fs).T > 0  # [F, 12], pretty_midi samples frame starts
    n = min(len(ours), len(ref))
    agree = ((ours[:n] > 0.5) == ref[:n]).mean()
    assert agree > 0.99


def test_chroma_fractional_cover():
    notes = [midi.Note(62, 0.05, 0.15, 100)]
    c = midi.chroma(notes, frame_rate=10, num_frames=3)
    assert c[:, 2] == pytest.approx([0.5, 0.5, 0.0])
    assert c[:, [0, 1, 3]].sum() == 0


def test_controls_hold_pitch_in_rests():
    notes = [midi.Note(69, 0.0, 0.1, 127), midi.Note(81, 0.2, 0.3, 64)]
    c = midi.controls(notes, frame_rate=100)
    assert c.f0_hz[:10] == pytest.approx(440.0)
    assert c.f0_hz[10:20] == pytest.approx(440.0)  # rest holds the previous pitch
    assert c.f0_hz[20:30] == pytest.approx(880.0)
    assert c.gate[10:20].sum() == 0 and c.loudness[25] == pytest.approx(64 / 127)


def test_piano_roll_png(tmp_path, melody_mid):
    notes = midi.load_notes(melody_mid)
    roll = midi.piano_roll(notes, 100)
    assert roll.shape[0] == 128 and roll[60, 10] == pytest.approx(90 / 127)
    out = midi.save_piano_roll(notes, tmp_path / "roll.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_notes_roundtrip(tmp_path):
    notes = [midi.Note(60 + i, 0.25 * i, 0.25 * i + 0.2, 80) for i in range(4)]
    path = midi.save_notes(notes, tmp_path / "x.mid", program=40)
    back = midi.load_notes(path)
    assert [n.pitch for n in back] == [60, 61, 62, 63]
    assert np.allclose([n.start for n in back], [n.start for n in notes], atol=1e-3)
    assert back[0].program == 40


def test_errors(tmp_path):
    with pytest.raises(midi.MidiError, match="no such file"):
        midi.load_notes(tmp_path / "nope.mid")
    txt = tmp_path / "a.mid"
    txt.write_text("hello")
    with pytest.raises(midi.MidiError, match="a.mid: not a MIDI file"):
        midi.load_notes(txt)
    trunc = tmp_path / "t.mid"
    trunc.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x01\x00")
    with pytest.raises(midi.MidiError, match="t.mid: malformed MIDI"):
        midi.load_notes(trunc)
    empty = tmp_path / "empty.mid"
    pretty_midi.PrettyMIDI().write(str(empty))
    with pytest.raises(midi.MidiError, match="has no pitched notes"):
        midi.load_notes(empty)
