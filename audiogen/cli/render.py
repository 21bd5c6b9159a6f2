"""``audiogen render``: MIDI file -> audio with the DDSP synth (a preset or a learned timbre)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from audiogen.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from audiogen.synth import INSTRUMENTS

    names = ", ".join(INSTRUMENTS)
    p = subparsers.add_parser(
        "render",
        help="render a MIDI file to audio with the DDSP synth",
        description="Render a MIDI file to audio with the DDSP synthesizer, using an "
        "instrument preset or a timbre learned with `audiogen synth fit`.",
    )
    p.add_argument("midi", help="input MIDI file (.mid)")
    p.add_argument("-o", "--out", required=True, help="output audio (.wav, .flac, .ogg, .mp3)")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--instrument",
        default="flute",
        help=f"preset: {names}; or 'auto' to pick one per track from its GM program "
        "(default: flute)",
    )
    which.add_argument("--timbre", help="learned timbre file (.safetensors from `synth fit`)")
    p.add_argument("--sample-rate", type=int, default=32000, help="output rate in Hz")
    p.add_argument("--track", type=int, help="render only this instrument track (0-based)")
    p.add_argument("--melody", action="store_true", help="keep only the highest voice")
    p.add_argument("--no-reverb", action="store_true", help="leave out the room reverb")
    p.add_argument("--seed", type=int, default=0, help="noise / vibrato seed")
    p.set_defaults(func=run)


def check_output(path: str) -> None:
    """Fail before any work when the output path cannot be written."""
    from audiogen.audio import WRITE_FORMATS

    out = Path(path)
    if out.suffix.lower() not in WRITE_FORMATS:
        known = ", ".join(WRITE_FORMATS)
        raise UserError(f"{out}: unsupported output format '{out.suffix}' (use one of {known})")
    if out.is_dir():
        raise UserError(f"{out}: is a directory, expected an output file name")
    if not out.parent.is_dir():
        raise UserError(f"{out}: output directory {out.parent} does not exist")


def run(args: argparse.Namespace) -> int:
    from audiogen import audio
    from audiogen.synth import get_preset, render_midi

    check_output(args.out)
    if args.instrument != "auto":
        get_preset(args.instrument)  # an unknown name fails before any work
    if not 8000 <= args.sample_rate <= 192000:
        raise UserError(f"--sample-rate {args.sample_rate}: choose 8000..192000 Hz")
    timbre = None
    if args.timbre:
        from audiogen.synth.timbre import load_timbre

        timbre = load_timbre(args.timbre)  # fail on a bad file before reading the MIDI
    start = time.perf_counter()
    wav = render_midi(
        args.midi,
        instrument=args.instrument,
        sample_rate=args.sample_rate,
        track=args.track,
        timbre=timbre,
        melody=args.melody,
        reverb=not args.no_reverb,
        seed=args.seed,
    )
    elapsed = time.perf_counter() - start
    audio.save(args.out, wav, args.sample_rate)
    seconds = wav.shape[-1] / args.sample_rate
    print(f"wrote {args.out}: {seconds:.1f} s at {args.sample_rate} Hz in {elapsed:.2f} s")
    return 0
