"""Instrument presets: a harmonic spectrum shape, noise, ADSR, vibrato and reverb per instrument.

A preset is data, not code: the renderer (:mod:`audiogen.synth.render`) turns a preset plus a
note into controls. Spectra are described the way acousticians describe instruments: a
roll-off in dB per octave of harmonic number, a level for even harmonics (a clarinet's
cylindrical bore nearly cancels them), fixed-frequency resonances (formants: an oboe's
nasal ~1 kHz peak, a violin's 3 kHz bridge hill), and per-harmonic decay for plucked and
struck strings whose upper partials die first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audiogen.synth.errors import SynthError


@dataclass(frozen=True)
class Envelope:
    """ADSR amplitude envelope. Times in seconds; ``sustain`` is a linear level in 0..1.

    The attack is a linear ramp. ``decay`` and ``release`` are exponential and given as T60,
    the time to fall by 60 dB, which is how strings and rooms are described.
    """

    attack: float = 0.02
    decay: float = 0.5
    sustain: float = 0.8
    release: float = 0.25


@dataclass(frozen=True)
class Vibrato:
    """Periodic pitch modulation: ``depth_cents`` peak deviation at ``rate_hz``, faded in
    over 0.2 s after ``delay`` seconds, as players do on held notes."""

    rate_hz: float = 5.5
    depth_cents: float = 0.0
    delay: float = 0.2


@dataclass(frozen=True)
class Formant:
    """A fixed-frequency resonance: a Gaussian bump of ``gain_db`` on a log-frequency axis."""

    freq_hz: float
    gain_db: float
    width_octaves: float = 0.7


@dataclass(frozen=True)
class Preset:
    """Everything the renderer needs to synthesise one instrument.

    Harmonic ``k`` (1-based) at frequency ``k * f0`` gets level, in dB,
    ``-slope * log2(k) + even_gain (k even) + sum(formants(k * f0)) + harmonic_gains[k-1]
    - brightness * log2(k) * (1 - velocity * envelope) - 8.69 * harmonic_decay * (k - 1) * t``:
    soft and decaying notes are darker, as on acoustic instruments.
    """

    name: str
    description: str
    slope_db_per_octave: float = 6.0
    even_gain_db: float = 0.0
    formants: tuple[Formant, ...] = ()
    harmonic_gains_db: tuple[float, ...] = ()  # explicit per-harmonic levels (organ stops)
    brightness_db_per_octave: float = 3.0
    harmonic_decay: float = 0.0  # 1/s per harmonic number above the fundamental
    num_harmonics: int = 60
    envelope: Envelope = field(default_factory=Envelope)
    vibrato: Vibrato = field(default_factory=Vibrato)
    noise_db: float = -40.0  # sustained noise level relative to the harmonic part
    noise_band_hz: tuple[float, float] = (1000.0, 8000.0)  # soft band-pass of the noise
    attack_noise_db: float = -30.0  # noise burst at the onset (breath, bow scrape, pluck)
    attack_noise_time: float = 0.03  # its decay time constant, s
    reverb_seconds: float = 1.2  # RT60 of the room
    reverb_wet: float = 0.2  # wet level relative to dry (energy ratio, linear amplitude)
    gain_db: float = 0.0


def _p(name: str, description: str, **kw) -> tuple[str, Preset]:
    return name, Preset(name=name, description=description, **kw)


INSTRUMENTS: dict[str, Preset] = dict(
    [
        _p(
            "flute",
            "strong fundamental, steep roll-off, breathy",
            slope_db_per_octave=14.0,
            formants=(Formant(800.0, 3.0, 1.0),),
            brightness_db_per_octave=4.0,
            num_harmonics=24,
            envelope=Envelope(attack=0.05, decay=0.6, sustain=0.85, release=0.25),
            vibrato=Vibrato(rate_hz=5.0, depth_cents=18.0, delay=0.15),
            noise_db=-24.0,
            noise_band_hz=(1500.0, 9000.0),
            attack_noise_db=-18.0,
            attack_noise_time=0.04,
        ),
        _p(
            "clarinet",
            "odd harmonics dominate (cylindrical bore)",
            slope_db_per_octave=5.0,
            even_gain_db=-26.0,
            brightness_db_per_octave=5.0,
            num_harmonics=40,
            envelope=Envelope(attack=0.03, decay=0.4, sustain=0.95, release=0.2),
            noise_db=-42.0,
            attack_noise_db=-30.0,
        ),
        _p(
            "oboe",
            "nasal: weak fundamental, resonance near 1.1 kHz",
            slope_db_per_octave=4.0,
            formants=(Formant(1100.0, 12.0, 0.6), Formant(3000.0, 5.0, 0.5)),
            brightness_db_per_octave=4.0,
            num_harmonics=40,
            envelope=Envelope(attack=0.03, decay=0.4, sustain=0.9, release=0.2),
            vibrato=Vibrato(rate_hz=5.5, depth_cents=12.0, delay=0.25),
            noise_db=-40.0,
            attack_noise_db=-32.0,
        ),
        _p(
            "bassoon",
            "dark double reed, resonance near 500 Hz",
            slope_db_per_octave=7.0,
            formants=(Formant(480.0, 10.0, 0.7), Formant(1200.0, 3.0, 0.5)),
            num_harmonics=48,
            envelope=Envelope(attack=0.04, decay=0.5, sustain=0.9, release=0.25),
            vibrato=Vibrato(rate_hz=5.0, depth_cents=8.0, delay=0.3),
            noise_db=-40.0,
            noise_band_hz=(500.0, 4000.0),
        ),
        _p(
            "violin",
            "bowed (sawtooth-like) with body resonances and a bridge hill at 3 kHz",
            slope_db_per_octave=5.0,
            formants=(Formant(290.0, 4.0, 0.5), Formant(3000.0, 8.0, 0.6)),
            brightness_db_per_octave=3.0,
            envelope=Envelope(attack=0.06, decay=0.8, sustain=0.85, release=0.4),
            vibrato=Vibrato(rate_hz=5.8, depth_cents=22.0, delay=0.18),
            noise_db=-34.0,
            noise_band_hz=(2000.0, 9000.0),
            attack_noise_db=-24.0,
            attack_noise_time=0.05,
            reverb_seconds=1.6,
            reverb_wet=0.25,
        ),
        _p(
            "cello",
            "bowed, darker body resonances",
            slope_db_per_octave=6.0,
            formants=(Formant(200.0, 5.0, 0.6), Formant(1500.0, 4.0, 0.6)),
            envelope=Envelope(attack=0.07, decay=1.0, sustain=0.85, release=0.5),
            vibrato=Vibrato(rate_hz=5.2, depth_cents=20.0, delay=0.2),
            noise_db=-36.0,
            noise_band_hz=(800.0, 6000.0),
            attack_noise_db=-26.0,
            attack_noise_time=0.05,
            reverb_seconds=1.6,
            reverb_wet=0.25,
        ),
        _p(
            "trumpet",
            "bright brass; brightness grows with velocity",
            slope_db_per_octave=3.0,
            formants=(Formant(1200.0, 8.0, 1.0),),
            brightness_db_per_octave=9.0,
            num_harmonics=48,
            envelope=Envelope(attack=0.03, decay=0.4, sustain=0.9, release=0.2),
            vibrato=Vibrato(rate_hz=5.5, depth_cents=8.0, delay=0.3),
            noise_db=-44.0,
            attack_noise_db=-30.0,
        ),
        _p(
            "horn",
            "mellow brass (horn, trombone, tuba)",
            slope_db_per_octave=9.0,
            formants=(Formant(450.0, 6.0, 0.8),),
            brightness_db_per_octave=7.0,
            envelope=Envelope(attack=0.05, decay=0.6, sustain=0.9, release=0.35),
            vibrato=Vibrato(rate_hz=5.0, depth_cents=5.0, delay=0.35),
            noise_db=-46.0,
            noise_band_hz=(300.0, 3000.0),
            reverb_seconds=1.8,
            reverb_wet=0.3,
        ),
        _p(
            "organ",
            "pipe organ registration 8' 4' 2 2/3' 2' 1 3/5' 1'",
            slope_db_per_octave=0.0,
            harmonic_gains_db=(0, -4, -8, -6, -12, -14, -60, -10),
            brightness_db_per_octave=0.0,
            num_harmonics=8,
            envelope=Envelope(attack=0.015, decay=0.2, sustain=1.0, release=0.2),
            noise_db=-55.0,
            attack_noise_db=-40.0,
            attack_noise_time=0.02,
            reverb_seconds=2.5,
            reverb_wet=0.35,
        ),
        _p(
            "plucked_string",
            "guitar/harp: fast attack, free decay, upper partials die first",
            slope_db_per_octave=6.0,
            formants=(Formant(2500.0, 3.0, 0.8),),
            harmonic_decay=0.35,
            brightness_db_per_octave=2.0,
            num_harmonics=48,
            envelope=Envelope(attack=0.003, decay=4.0, sustain=0.0, release=0.3),
            noise_db=-60.0,
            attack_noise_db=-22.0,
            attack_noise_time=0.008,
        ),
        _p(
            "bass",
            "plucked electric bass: dark, long decay",
            slope_db_per_octave=10.0,
            harmonic_decay=0.5,
            num_harmonics=32,
            envelope=Envelope(attack=0.005, decay=5.0, sustain=0.15, release=0.25),
            noise_db=-60.0,
            attack_noise_db=-28.0,
            attack_noise_time=0.01,
            noise_band_hz=(200.0, 3000.0),
            reverb_seconds=0.8,
            reverb_wet=0.1,
            gain_db=3.0,
        ),
        _p(
            "piano",
            "struck string: hammer attack, two-stage decay, velocity-dependent brightness",
            slope_db_per_octave=8.0,
            formants=(Formant(1000.0, 2.0, 1.0),),
            brightness_db_per_octave=8.0,
            harmonic_decay=0.25,
            num_harmonics=48,
            envelope=Envelope(attack=0.004, decay=6.0, sustain=0.05, release=0.35),
            noise_db=-60.0,
            attack_noise_db=-26.0,
            attack_noise_time=0.006,
            noise_band_hz=(500.0, 6000.0),
            reverb_seconds=1.5,
        ),
    ]
)

# General MIDI program (0-127) -> preset, by the GM families of 8 programs, with the
# exceptions that matter for a symbolic corpus (solo strings, reeds, plucked strings).
_GM_FAMILIES = (
    "piano",  # 0-7 piano
    "piano",  # 8-15 chromatic percussion
    "organ",  # 16-23 organ
    "plucked_string",  # 24-31 guitar
    "bass",  # 32-39 bass
    "violin",  # 40-47 strings
    "violin",  # 48-55 ensemble
    "trumpet",  # 56-63 brass
    "oboe",  # 64-71 reed
    "flute",  # 72-79 pipe
    "organ",  # 80-87 synth lead
    "organ",  # 88-95 synth pad
    "organ",  # 96-103 synth effects
    "plucked_string",  # 104-111 ethnic
    "plucked_string",  # 112-119 percussive
    "organ",  # 120-127 sound effects
)
_GM_EXCEPTIONS = {
    6: "plucked_string",  # harpsichord
    7: "plucked_string",  # clavinet
    22: "oboe",  # harmonica
    42: "cello",
    43: "cello",  # contrabass
    45: "plucked_string",  # pizzicato strings
    46: "plucked_string",  # harp
    47: "bass",  # timpani
    52: "flute",  # choir aahs
    53: "flute",  # voice oohs
    54: "flute",  # synth voice
    57: "horn",  # trombone
    58: "horn",  # tuba
    60: "horn",  # french horn
    66: "bassoon",  # tenor sax
    67: "bassoon",  # baritone sax
    70: "bassoon",
    71: "clarinet",
    80: "clarinet",  # square lead
    81: "violin",  # sawtooth lead
    108: "piano",  # kalimba
    109: "oboe",  # bagpipe
    110: "violin",  # fiddle
    111: "oboe",  # shanai
}


def preset_for_program(program: int) -> str:
    """Name of the preset that best stands in for a General MIDI program (0-127)."""
    if not 0 <= program <= 127:
        raise SynthError(f"MIDI program {program} is outside 0..127")
    return _GM_EXCEPTIONS.get(program, _GM_FAMILIES[program // 8])


def get_preset(instrument: str | Preset) -> Preset:
    """Look up a preset by name (or pass a :class:`Preset` through)."""
    if isinstance(instrument, Preset):
        return instrument
    try:
        return INSTRUMENTS[instrument]
    except KeyError:
        names = ", ".join(sorted(INSTRUMENTS))
        raise SynthError(f"unknown instrument {instrument!r}; choose one of: {names}") from None
