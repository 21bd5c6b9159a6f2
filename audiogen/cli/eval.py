"""``audiogen eval``: FAD, CLAP score, chroma cosine and codec metrics, with reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add ``eval fad|clap|kl|chroma|codec``."""
    p = subparsers.add_parser("eval", help="evaluate generated audio (FAD, CLAP, chroma, codec)")
    sub = p.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")

    f = sub.add_parser("fad", help="Fréchet audio distance of a generated set to a reference")
    f.add_argument("--reference", required=True, type=Path, help="DIR, MANIFEST.jsonl or STATS.npz")
    f.add_argument("--generated", required=True, type=Path, help="DIR or MANIFEST.jsonl")
    f.add_argument(
        "--embedding",
        default="vggish",
        choices=("vggish", "clap", "encodec", "codec", "mfcc"),
        help="embedding model (default vggish)",
    )
    f.add_argument("--weights", type=Path, help="local weights file/directory for the embedding")
    f.add_argument("--pca", action="store_true", help="vggish: apply PCA + 8-bit quantisation")
    f.add_argument("--pca-file", type=Path, help="vggish: vggish_pca_params-970ea276.pth")
    f.add_argument("--final-relu", action="store_true", help="vggish: keep the last ReLU")
    f.add_argument("--save-stats", type=Path, help="write the reference statistics (.npz)")
    f.add_argument("--fad-inf", action="store_true", help="also extrapolate FAD∞")
    _common(f)
    f.set_defaults(func=_fad)

    c = sub.add_parser("clap", help="CLAP text-audio score")
    c.add_argument("--generated", required=True, type=Path, help="DIR or MANIFEST.jsonl")
    c.add_argument(
        "--weights", type=Path, help="laion_clap checkpoint (.pt) or transformers CLAP directory"
    )
    c.add_argument("--tokenizer", type=Path, help="local RoBERTa tokenizer directory")
    c.add_argument("--text", help="one caption for every clip (else the manifest's description)")
    _common(c)
    c.set_defaults(func=_clap)

    m = sub.add_parser("chroma", help="chroma cosine between melodies and generated audio")
    m.add_argument("--melody", required=True, type=Path, help="MIDI/audio file or folder")
    m.add_argument("--generated", required=True, type=Path, help="audio file or folder")
    _common(m)
    m.set_defaults(func=_chroma)

    kl = sub.add_parser("kl", help="KL divergence of a classifier's labels (PaSST)")
    kl.add_argument("--reference", required=True, type=Path, help="DIR or MANIFEST.jsonl")
    kl.add_argument("--generated", required=True, type=Path, help="DIR or MANIFEST.jsonl")
    kl.add_argument("--classifier", default="passt", choices=("passt",), help="default passt")
    kl.add_argument("--weights", type=Path, help="passt-s-f128-p16-s10-ap.476-swa.pt or similar")
    _common(kl)
    kl.set_defaults(func=_kl)

    k = sub.add_parser("codec", help="codec round trip: SI-SDR, mel distance, bitrate")
    k.add_argument("--codec", required=True, type=Path, help="audiogen codec directory")
    k.add_argument("--audio", required=True, type=Path, help="DIR or MANIFEST.jsonl")
    k.add_argument("--bandwidth", type=float, help="kbps (one of the codec's bandwidths)")
    _common(k)
    k.set_defaults(func=_codec)
    y = sub.add_parser("melody", help="melody models: bits per note and sample statistics")
    y.add_argument("--data", required=True, type=Path, help="folder of held-out MIDI tunes")
    y.add_argument("--model", action="append", default=[], help="NAME=DIR or DIR (repeatable)")
    y.add_argument("--out", type=Path, default=Path("melody_report.json"), help="report .json")
    y.add_argument("--samples", type=int, default=64, help="samples per model")
    y.add_argument("--seed", type=int, default=0)
    y.set_defaults(func=_melody)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("eval_report"), help="report folder")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _finish(report, args, embeddings=None) -> int:
    from audiogen.eval.report import write_report

    paths = write_report(report, args.out, embeddings=embeddings)
    print(json.dumps(report.summary, default=float))
    for f in report.failed:
        print(f"skipped {f['path']}: {f['reason']}", file=sys.stderr)
    print(f"report: {paths['markdown']}", file=sys.stderr)
    return 0


def _fad(args: argparse.Namespace) -> int:
    from audiogen.eval.embeddings import build_embedding
    from audiogen.eval.run import evaluate_fad

    model = build_embedding(
        args.embedding,
        weights=args.weights,
        pca=args.pca,
        pca_file=args.pca_file,
        activation=args.final_relu,
    )
    report, frames = evaluate_fad(
        reference=args.reference,
        generated=args.generated,
        model=model,
        save_stats=args.save_stats,
        infinity=args.fad_inf,
        progress=not args.no_progress,
    )
    return _finish(report, args, frames)


def _clap(args: argparse.Namespace) -> int:
    from audiogen.eval.embeddings import build_embedding
    from audiogen.eval.run import evaluate_clap

    model = build_embedding("clap", weights=args.weights, tokenizer=args.tokenizer)
    report = evaluate_clap(
        generated=args.generated, model=model, text=args.text, progress=not args.no_progress
    )
    return _finish(report, args)


def _kl(args: argparse.Namespace) -> int:
    from audiogen.eval.passt import PasstClassifier
    from audiogen.eval.run import evaluate_kl

    classifier = PasstClassifier.from_file(args.weights)
    report = evaluate_kl(
        reference=args.reference,
        generated=args.generated,
        classifier=classifier,
        progress=not args.no_progress,
    )
    return _finish(report, args)


def _chroma(args: argparse.Namespace) -> int:
    from audiogen.eval.run import evaluate_chroma

    report = evaluate_chroma(
        melody=args.melody, generated=args.generated, progress=not args.no_progress
    )
    return _finish(report, args)


def _codec(args: argparse.Namespace) -> int:
    from audiogen.codecs.files import load_codec
    from audiogen.eval.run import evaluate_codec

    codec = load_codec(args.codec)
    if args.bandwidth is not None:
        codec.set_bandwidth(args.bandwidth)
    report = evaluate_codec(codec=codec, audio_source=args.audio, progress=not args.no_progress)
    return _finish(report, args)


def _melody(args: argparse.Namespace) -> int:
    from audiogen.melody.evaluate import evaluate_melody, parse_model_args

    report = evaluate_melody(
        args.data, parse_model_args(args.model), args.out, samples=args.samples, seed=args.seed
    )
    print(json.dumps({k: v.get("bits_per_note") for k, v in report["models"].items()}))
    print(f"report: {args.out}", file=sys.stderr)
    return 0
