"""``audiogen import KIND SRC --out DIR``: convert peer weights into audiogen's format."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiogen.cli.codec import add_import_commands


def register(subparsers: argparse._SubParsersAction) -> None:
    imp = subparsers.add_parser("import", help="convert peer weights into an audiogen directory")
    sub = imp.add_subparsers(dest="import_command", metavar="KIND")
    add_import_commands(sub)
    m = sub.add_parser(
        "musicgen",
        help="HF transformers MusicGen / MusicGen-melody directory -> generator directory",
        description=(
            "Convert a local HF MusicGen or MusicGen-melody directory (config.json, "
            "model.safetensors, tokenizer files) into an audiogen generator directory "
            "(codec/ + lm/ with the T5 encoder inside), loadable with "
            "`audiogen generate --model DIR`. Safetensors only; pickled .bin files are refused."
        ),
    )
    m.add_argument("src", type=Path, help="local HF MusicGen directory")
    m.add_argument("--out", type=Path, required=True, help="generator directory to write")
    m.set_defaults(func=_import_musicgen)
    imp.set_defaults(func=lambda args: (imp.print_help(), 2)[1])


def _import_musicgen(args: argparse.Namespace) -> int:
    from audiogen.pipeline import MusicGenerator

    gen = MusicGenerator.from_hf(args.src, device="cpu", dtype=None)
    gen.save(args.out)
    spec = gen.model.spec
    kind = "MusicGen-melody" if spec.melody.enabled else "MusicGen"
    print(
        f"imported {kind}: {spec.lm.num_layers} layers, d={spec.lm.dim}, "
        f"{spec.lm.num_codebooks} x {spec.lm.cardinality} codes at {gen.frame_rate} Hz "
        f"-> {args.out}"
    )
    return 0
