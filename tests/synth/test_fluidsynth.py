"""The FluidSynth CLI wrapper: a real render when installed, clear errors when not."""

from __future__ import annotations

import shutil

import pytest
import soundfile as sf

from audiogen.synth import SynthError
from audiogen.synth import fluidsynth as fs

needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None, reason="fluidsynth not installed"
)


@needs_fluidsynth
def test_renders_midi(tmp_path, melody_mid):
    try:
        fs.find_soundfont()
    except SynthError:
        pytest.skip("no GM SoundFont installed")
    out = fs.render_midi_fluidsynth(melody_mid, tmp_path / "fs.wav", sample_rate=16000)
    info = sf.info(str(out))
    assert info.samplerate == 16000 and info.duration > 2.5


def test_missing_binary_is_a_user_error(monkeypatch, tmp_path, melody_mid):
    monkeypatch.setattr(fs.shutil, "which", lambda name: None)
    with pytest.raises(SynthError, match="apt-get install fluidsynth"):
        fs.render_midi_fluidsynth(melody_mid, tmp_path / "o.wav")
    assert not (tmp_path / "o.wav").exists()


@needs_fluidsynth
def test_missing_soundfont_and_bad_midi(tmp_path, melody_mid):
    with pytest.raises(SynthError, match="SoundFont not found"):
        fs.render_midi_fluidsynth(melody_mid, tmp_path / "o.wav", soundfont=tmp_path / "x.sf2")
    bad = tmp_path / "bad.mid"
    bad.write_text("not midi")
    with pytest.raises(SynthError, match="not a MIDI file"):
        fs.render_midi_fluidsynth(bad, tmp_path / "o.wav")
    assert not (tmp_path / "o.wav").exists()
