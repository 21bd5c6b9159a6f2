"""Render MIDI with the FluidSynth command-line synthesizer and a General MIDI SoundFont.

The peer for benchmarks, and a second renderer for building corpora. Needs Debian's
``fluidsynth`` and ``fluid-soundfont-gm`` packages (or any ``fluidsynth`` binary plus a
SoundFont given explicitly or via ``$AUDIOGEN_SOUNDFONT``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from audiogen.fileio import atomic_path
from audiogen.synth.errors import SynthError

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)
INSTALL_HINT = "install it with: sudo apt-get install fluidsynth fluid-soundfont-gm"


def fluidsynth_binary() -> str:
    """Path of the ``fluidsynth`` executable; :class:`SynthError` when it is not installed."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise SynthError(f"the fluidsynth program was not found on PATH; {INSTALL_HINT}")
    return exe


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path:
    """The SoundFont to use: ``soundfont``, else ``$AUDIOGEN_SOUNDFONT``, else Debian's GM one."""
    if soundfont is not None or os.environ.get("AUDIOGEN_SOUNDFONT"):
        path = Path(soundfont if soundfont is not None else os.environ["AUDIOGEN_SOUNDFONT"])
        if not path.is_file():
            raise SynthError(f"{path}: SoundFont not found")
        return path
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise SynthError(f"no General MIDI SoundFont found (looked in /usr/share); {INSTALL_HINT}")


def render_midi_fluidsynth(
    midi_path: str | os.PathLike,
    out_wav: str | os.PathLike,
    sample_rate: int = 32000,
    soundfont: str | os.PathLike | None = None,
    gain: float = 0.5,
    reverb: bool = True,
    chorus: bool = True,
    timeout: float | None = 600.0,
) -> Path:
    """Render ``midi_path`` to a 16-bit stereo WAV at ``out_wav`` with the FluidSynth CLI.

    Runs ``fluidsynth -ni -q -F OUT -r SR -g GAIN SOUNDFONT MIDI``; the output is written
    atomically, so a failed render leaves nothing behind. Raises :class:`SynthError` when
    fluidsynth or the SoundFont is missing, the MIDI file is missing or not MIDI, or
    fluidsynth fails.
    """
    exe = fluidsynth_binary()
    sf2 = find_soundfont(soundfont)
    midi = Path(midi_path)
    if not midi.is_file():
        raise SynthError(f"{midi}: no such MIDI file")
    with open(midi, "rb") as f:
        if f.read(4) != b"MThd":
            raise SynthError(f"{midi}: not a MIDI file (no 'MThd' header)")
    out = Path(out_wav)
    if out.suffix.lower() != ".wav":
        raise SynthError(f"{out}: FluidSynth output must be a .wav file")
    with atomic_path(out, fsync=False) as tmp:
        cmd = [exe, "-ni", "-q", "-T", "wav", "-F", str(tmp), "-r", str(int(sample_rate))]
        cmd += ["-g", str(gain), "-R", "1" if reverb else "0", "-C", "1" if chorus else "0"]
        proc = subprocess.run(
            [*cmd, str(sf2), str(midi)], capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size <= 44:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SynthError(f"{midi}: fluidsynth failed ({detail[0]})")
    return out
