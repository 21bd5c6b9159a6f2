"""``audiogen codec encode|decode``; the codec kinds of ``audiogen import`` (see imports.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``codec`` command group."""
    p = subparsers.add_parser("codec", help="encode audio to codec tokens and decode them back")
    sub = p.add_subparsers(dest="codec_command", metavar="SUBCOMMAND")

    enc = sub.add_parser("encode", help="audio file -> codes (.npz)")
    enc.add_argument("input", type=Path, help="audio file (resampled / mixed to the codec's)")
    enc.add_argument("-o", "--out", type=Path, required=True, help="codes file to write (.npz)")
    enc.add_argument("--codec", type=Path, required=True, metavar="DIR", help="codec directory")
    enc.add_argument(
        "--bandwidth", type=float, metavar="KBPS", help="one of the codec's target bandwidths"
    )
    enc.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    enc.set_defaults(func=_encode)

    dec = sub.add_parser("decode", help="codes (.npz) -> audio file")
    dec.add_argument("input", type=Path, help="codes written by 'audiogen codec encode'")
    dec.add_argument("-o", "--out", type=Path, required=True, help="audio file to write")
    dec.add_argument("--codec", type=Path, required=True, metavar="DIR", help="codec directory")
    dec.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    dec.set_defaults(func=_decode)

    ref = sub.add_parser(
        "refit",
        help="refit the RVQ codebooks by k-means on the encoder's output over a manifest",
        description="Run the codec's encoder over the middle --seconds of each item of "
        "MANIFEST's --split and fit each codebook in turn, by k-means, to what the ones "
        "before it leave over. Encoder and decoder are unchanged. For codecs whose "
        "codebooks training left under-used (see the README). Unreadable files are skipped "
        "and listed.",
    )
    ref.add_argument("--codec", type=Path, required=True, metavar="DIR", help="codec directory")
    ref.add_argument("--manifest", type=Path, required=True, help="manifest.jsonl")
    ref.add_argument("--out", type=Path, required=True, help="codec directory to write")
    ref.add_argument("--split", default="train", help="items of this split (default train)")
    ref.add_argument("--seconds", type=float, default=12.0, help="seconds per item (default 12)")
    ref.add_argument("--max-items", type=int, default=None, help="at most this many items")
    ref.add_argument("--iters", type=int, default=25, help="k-means iterations (default 25)")
    ref.add_argument("--seed", type=int, default=0)
    ref.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ref.set_defaults(func=_refit)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def add_import_commands(import_sub) -> None:
    """Add the codec kinds to an ``import`` subparser group (shareable with other models)."""
    e = import_sub.add_parser(
        "encodec",
        help="state dict of the `encodec` package (24 kHz or 48 kHz)",
        description=(
            "Import an `encodec` package checkpoint such as encodec_24khz-d7cc33bc.th. "
            "A .safetensors file is read directly; any other file is read with "
            "torch.load(weights_only=True), which accepts tensors only and refuses "
            "pickled code. The 48 kHz model is recognised by its group-norm weights."
        ),
    )
    e.add_argument("src", type=Path, help="state dict file (.th / .pt / .safetensors)")
    e.add_argument("--out", type=Path, required=True, help="codec directory to write")
    e.set_defaults(func=_import, kind="encodec")

    h = import_sub.add_parser(
        "hf-encodec",
        help="HF transformers EncodecModel directory (e.g. MusicGen's encodec_32khz)",
        description=(
            "Import a local HF EncodecModel directory (config.json + model.safetensors, "
            "or pytorch_model.bin read with torch.load(weights_only=True)). Nothing is "
            "downloaded."
        ),
    )
    h.add_argument("src", type=Path, help="local directory")
    h.add_argument("--out", type=Path, required=True, help="codec directory to write")
    h.set_defaults(func=_import, kind="hf-encodec")


def _encode(args: argparse.Namespace) -> int:
    from audiogen.codecs.files import encode_file, load_codec

    codec = load_codec(args.codec, device=args.device)
    r = encode_file(args.input, args.out, codec=codec, bandwidth=args.bandwidth)
    print(
        f"wrote {r.path}: {r.num_codebooks} codebooks x {r.num_frames} frames "
        f"({r.seconds:.2f} s, {r.kbps:.2f} kbps)"
    )
    return 0


def _decode(args: argparse.Namespace) -> int:
    from audiogen.codecs.files import decode_file, load_codec

    codec = load_codec(args.codec, device=args.device)
    print(f"wrote {decode_file(args.input, args.out, codec=codec)}")
    return 0


def _refit(args: argparse.Namespace) -> int:
    from audiogen.codecs import Codec
    from audiogen.codecs.refit import (
        RefitReport,
        encoder_frames,
        refit_codebooks,
        select_items,
    )
    from audiogen.data.manifest import read_manifest
    from audiogen.errors import UserError

    if args.seconds <= 0 or args.iters < 1 or (args.max_items is not None and args.max_items < 1):
        raise UserError("--seconds must be > 0, --iters and --max-items at least 1")
    items = select_items(
        read_manifest(args.manifest), split=args.split, max_items=args.max_items, seed=args.seed
    )
    if not items:
        raise UserError(f"{args.manifest}: no items in split {args.split!r}")
    codec = Codec.load(args.codec, device=args.device).eval()  # weights kept as trained
    report = RefitReport()
    try:
        frames = encoder_frames(codec, items, seconds=args.seconds, report=report)
    except ValueError as e:
        raise UserError(f"{args.manifest}: {e}") from None
    for path, reason in report.skipped.items():
        print(f"  skipped {path}: {reason}")
    if frames.shape[0] < codec.cardinality:
        raise UserError(
            f"{args.manifest}: {frames.shape[0]} frames are fewer than the "
            f"{codec.cardinality} codes of a codebook; give more items or --seconds"
        )
    refit_codebooks(codec, frames, iters=args.iters, seed=args.seed, report=report)
    codec.save(args.out)
    for k, (ppl, res) in enumerate(zip(report.perplexity, report.residual, strict=True)):
        print(f"  q{k + 1}: perplexity {ppl:.0f}, energy left {100 * res:.1f}%")
    print(
        f"wrote {args.out}: codebooks refitted on {report.frames} frames of {report.items} "
        f"items, {len(report.skipped)} skipped"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    from audiogen.codecs.files import import_codec

    codec = import_codec(args.kind, args.src, args.out)
    print(
        f"wrote {args.out}: {codec.sample_rate} Hz, {codec.channels} ch, "
        f"{codec.quantizer.n_q} codebooks of {codec.cardinality}, {codec.frame_rate} Hz frames"
    )
    return 0
