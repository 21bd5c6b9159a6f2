"""DDSP-style synthesis: harmonic oscillator bank, filtered noise, reverb, instrument presets,
and an optional learned timbre decoder.

    >>> from audiogen.synth import render_midi, INSTRUMENTS
    >>> wav = render_midi("tune.mid", instrument="violin", sample_rate=32000)  # [1, T]
"""

from audiogen.synth.errors import SynthError
from audiogen.synth.presets import (
    INSTRUMENTS,
    Envelope,
    Formant,
    Preset,
    Vibrato,
    get_preset,
    preset_for_program,
)


def __getattr__(name: str):
    # The renderer pulls in torch (~3 s of start-up); importing it lazily keeps
    # `audiogen --help` and preset listings instant.
    if name in ("render_midi", "render_notes"):
        from audiogen.synth import render

        return getattr(render, name)
    raise AttributeError(f"module 'audiogen.synth' has no attribute {name!r}")


__all__ = [
    "INSTRUMENTS",
    "Envelope",
    "Formant",
    "Preset",
    "SynthError",
    "Vibrato",
    "get_preset",
    "preset_for_program",
    "render_midi",
    "render_notes",
]
