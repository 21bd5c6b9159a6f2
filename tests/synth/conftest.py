"""Shared fixtures for the synth tests: small MIDI files written with pretty_midi."""

from __future__ import annotations

import pretty_midi
import pytest
import torch

torch.set_num_threads(1)


def write_midi(path, notes, program=0):
    """Write ``notes`` [(pitch, start, end, velocity)] as one instrument track."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=program)
    for pitch, start, end, velocity in notes:
        inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=start, end=end))
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


@pytest.fixture
def melody_mid(tmp_path):
    notes = [(60 + p, 0.5 * i, 0.5 * i + 0.45, 100) for i, p in enumerate([0, 2, 4, 5, 7, 9])]
    return write_midi(tmp_path / "melody.mid", notes, program=73)
