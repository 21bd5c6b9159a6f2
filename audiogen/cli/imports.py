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
        help="HF MusicGen(-melody) directory or audiocraft export -> generator directory",
        description=(
            "Convert a local HF MusicGen or MusicGen-melody directory (config.json, "
            "model.safetensors, tokenizer files), or an audiocraft export (a directory with "
            "state_dict.bin and compression_state_dict.bin, as written by "
            "audiocraft.utils.export), into an audiogen generator directory (codec/ + lm/ "
            "with the T5 encoder inside), loadable with `audiogen generate --model DIR`. "
            "HF weights must be safetensors; audiocraft .bin files are read with "
            "torch.load(weights_only=True), and files needing arbitrary unpickling are refused."
        ),
    )
    m.add_argument("src", type=Path, help="local HF MusicGen directory or audiocraft export")
    m.add_argument("--out", type=Path, required=True, help="generator directory to write")
    m.add_argument(
        "--t5",
        type=Path,
        help="audiocraft only: local HF T5 directory for the text conditioner (e.g. t5-base)",
    )
    m.add_argument(
        "--codec",
        type=Path,
        help="audiocraft only: local codec directory (HF EncodecModel or audiogen codec) when "
        "compression_state_dict.bin names a released codec such as facebook/encodec_32khz",
    )
    m.set_defaults(func=_import_musicgen)
    imp.set_defaults(func=lambda args: (imp.print_help(), 2)[1])


def _import_musicgen(args: argparse.Namespace) -> int:
    import torch

    from audiogen.audiocraft import import_audiocraft_musicgen, is_audiocraft_export
    from audiogen.errors import UserError
    from audiogen.pipeline import MusicGenerator

    if is_audiocraft_export(args.src):
        model, codec = import_audiocraft_musicgen(args.src, t5=args.t5, codec=args.codec)
        gen = MusicGenerator(model=model, codec=codec, device="cpu", dtype=torch.float32)
        source = "audiocraft export"
    else:
        if args.t5 is not None or args.codec is not None:
            raise UserError(f"{args.src}: --t5 / --codec apply to audiocraft exports only")
        gen = MusicGenerator.from_hf(args.src, device="cpu", dtype=torch.float32)
        source = "HF"
    gen.save(args.out)
    spec = gen.model.spec
    kind = "MusicGen-melody" if spec.melody.enabled else "MusicGen"
    print(
        f"imported {kind} ({source}): {spec.lm.num_layers} layers, d={spec.lm.dim}, "
        f"{spec.lm.num_codebooks} x {spec.lm.cardinality} codes at {gen.frame_rate} Hz "
        f"-> {args.out}"
    )
    return 0
