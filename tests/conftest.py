"""Shared fixtures: small audio and MIDI files written to a temp dir."""

from __future__ import annotations

import os
import tempfile

# librosa compiles numba kernels with cache=True into its package folder; two xdist workers
# writing that cache at once in a fresh venv can corrupt it and crash a worker. Each worker
# gets its own cache directory (set before anything imports numba).
os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    os.path.join(
        tempfile.gettempdir(),
        f"audiogen-numba-{os.getuid()}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}",
    ),
)

import numpy as np
import pytest
import torch

from audiogen import audio, midi


@pytest.fixture
def sine_wav(tmp_path):
    """A 1 s, 440 Hz mono sine at 16 kHz, saved as WAV; returns the path."""
    sr = 16000
    t = torch.arange(sr) / sr
    wav = 0.5 * torch.sin(2 * torch.pi * 440.0 * t)[None]
    return audio.save(tmp_path / "sine.wav", wav, sr)


@pytest.fixture
def melody_mid(tmp_path):
    """A 4-note C-major melody over a held low C, as a 2-track MIDI file; returns the path."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    mel = pretty_midi.Instrument(program=73, name="flute")
    for i, p in enumerate([60, 64, 67, 72]):
        mel.notes.append(pretty_midi.Note(90, p, 0.5 * i, 0.5 * i + 0.45))
    bass = pretty_midi.Instrument(program=32, name="bass")
    bass.notes.append(pretty_midi.Note(70, 36, 0.0, 2.0))
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    drums.notes.append(pretty_midi.Note(100, 38, 0.0, 0.1))
    pm.instruments.extend([mel, bass, drums])
    path = tmp_path / "melody.mid"
    pm.write(str(path))
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def notes_from(melody_mid):
    return midi.load_notes(melody_mid)
