"""``audiogen tokenize``: encode a manifest's audio into token shards for LM training."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenize",
        help="encode a manifest's audio with a codec into token shards",
        description="Encode every item of MANIFEST with the codec in --codec DIR into int16 "
        "token shards plus index.jsonl under --out. Re-running resumes; unreadable files are "
        "skipped and listed.",
    )
    p.add_argument("manifest", help="manifest.jsonl (from `audiogen data index|build-corpus`)")
    p.add_argument(
        "--codec", required=True, help="codec directory (config.json + model.safetensors)"
    )
    p.add_argument("--out", required=True, help="output token directory")
    p.add_argument("--bandwidth", type=float, default=None, help="codec bandwidth in kbps")
    p.add_argument("--split", default=None, help="only items of this split")
    p.add_argument("--device", default="cpu")
    p.add_argument("--shard-frames", type=int, default=1 << 18, help="frames per shard file")
    p.add_argument(
        "--batch",
        type=int,
        default=1,
        help="items encoded together, shortest first (for GPUs; default 1). Each is padded "
        "to the longest of its batch, so its last frames can differ from unbatched codes",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audiogen.codecs import Codec
    from audiogen.data.manifest import read_manifest
    from audiogen.data.tokens import TokenMeta, tokenize_manifest

    items = read_manifest(args.manifest)
    if args.split:
        items = [it for it in items if it.split == args.split]
    from audiogen.errors import UserError

    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}")
    codec = Codec.load(args.codec, device=args.device).prepare_for_inference()
    if args.batch > 1 and codec.config.normalize:
        raise UserError(
            f"{args.codec}: this codec normalises each segment's loudness, which padding for "
            "--batch would change; use --batch 1"
        )
    codec.set_bandwidth(args.bandwidth)
    report = tokenize_manifest(
        items,
        lambda wav: codec.encode(wav.to(args.device)),
        args.out,
        meta=TokenMeta.of(codec),
        shard_frames=args.shard_frames,
        batch_size=args.batch,
    )
    print(
        f"tokenized {report.done} items ({report.frames} frames), {report.resumed} already done, "
        f"{len(report.skipped)} skipped -> {args.out}"
    )
    for path, reason in report.skipped.items():
        print(f"  skipped {path}: {reason}")
    return 0
