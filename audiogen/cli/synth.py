"""``audiogen synth``: list instrument presets, fit a learned timbre to a recording."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiogen.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="DDSP synth: list presets, fit a timbre to a recording",
        description="DDSP synthesizer tools.",
    )
    sub = p.add_subparsers(dest="synth_command", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="list instrument presets")
    ls.set_defaults(func=run_list)

    fit = sub.add_parser(
        "fit",
        help="learn a timbre from a monophonic recording",
        description="Train a small timbre decoder (f0, loudness -> harmonics + noise) on a "
        "monophonic recording; render MIDI in it with `audiogen render --timbre FILE`.",
    )
    fit.add_argument("audio", help="monophonic recording of one instrument (wav/flac/ogg/mp3)")
    fit.add_argument("--out", required=True, help="output timbre file (.safetensors)")
    fit.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    fit.add_argument("--batch-size", type=int, default=8)
    fit.add_argument("--segment-seconds", type=float, default=1.0, help="training crop length")
    fit.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    fit.add_argument("--sample-rate", type=int, default=32000, help="model rate in Hz")
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(func=run_fit)


def run_list(args: argparse.Namespace) -> int:
    from audiogen.synth import INSTRUMENTS

    for name, preset in INSTRUMENTS.items():
        print(f"{name:16s} {preset.description}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from audiogen.synth.fit import fit_timbre_file
    from audiogen.synth.timbre import TimbreConfig

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise UserError(f"{out}: timbre files end in .safetensors")
    if out.is_dir() or not out.parent.is_dir():
        raise UserError(f"{out}: cannot write here (output directory missing or a directory)")
    if args.steps < 1 or args.batch_size < 1 or args.segment_seconds <= 0:
        raise UserError("--steps, --batch-size and --segment-seconds must be positive")
    if not 8000 <= args.sample_rate <= 96000:
        raise UserError(f"--sample-rate {args.sample_rate}: choose 8000..96000 Hz")
    result = fit_timbre_file(
        args.audio,
        out,
        config=TimbreConfig(sample_rate=args.sample_rate),
        steps=args.steps,
        batch_size=args.batch_size,
        segment_seconds=args.segment_seconds,
        lr=args.lr,
        seed=args.seed,
    )
    print(
        f"wrote {out}: final spectral loss {result.losses[-1]:.3f} "
        f"({result.voiced_fraction:.0%} of frames pitched, {result.seconds:.0f} s)"
    )
    return 0
