"""Shared fixtures: small audio and MIDI files written to a temp dir."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch

from audiogen import audio, midi  # neither imports numba (librosa loads lazily)

# librosa compiles numba kernels (cache=True) on first use. In a fresh venv, compiling them
# inside a test worker that has already loaded torch & co. crashed the worker (segfault in
# the compiled peak_pick) while loading the same kernels from a cache never did. So one
# clean subprocess compiles them into a cache shared by all workers before tests start.
_CACHE = os.path.join(
    tempfile.gettempdir(),
    f"audiogen-numba-{os.getuid()}-{hashlib.md5(sys.prefix.encode()).hexdigest()[:8]}",
)
os.environ.setdefault("NUMBA_CACHE_DIR", _CACHE)

_WARM_NUMBA = """
import numpy as np, librosa
sr = 16000
y = (0.3 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32)
for dtype in (np.float32, np.float64):
    librosa.onset.onset_detect(y=y.astype(dtype), sr=sr, backtrack=True)
librosa.pyin(y, fmin=100, fmax=800, sr=sr)
librosa.util.localmax(np.random.rand(10, 10))
"""


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER") is None:  # the controller, once per run
        subprocess.run([sys.executable, "-c", _WARM_NUMBA], check=False, env=os.environ.copy())


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
