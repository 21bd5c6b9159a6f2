"""``audiogen data``: index datasets into manifests and build the offline corpus."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    """Add ``data index`` and ``data build-corpus``."""
    p = subparsers.add_parser("data", help="index datasets and build the offline corpus")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    idx = sub.add_parser("index", help="index FMA, MUSDB18 or a folder into a manifest")
    src = idx.add_mutually_exclusive_group(required=True)
    src.add_argument("--fma", type=Path, metavar="ROOT", help="FMA root (fma_metadata/, fma_*/)")
    src.add_argument("--musdb", type=Path, metavar="ROOT", help="MUSDB18(-HQ) root")
    src.add_argument("--folder", type=Path, metavar="DIR", help="any folder of audio files")
    idx.add_argument("--out", type=Path, required=True, help="manifest to write (.jsonl)")
    idx.add_argument("--min-duration", type=float, default=1.0, help="seconds (default 1)")
    idx.add_argument(
        "--no-vocals",
        action="store_true",
        help="MUSDB: index drums+bass+other mixed into a file instead of the mixture",
    )
    idx.add_argument(
        "--audio-dir",
        type=Path,
        help="MUSDB: where decoded/summed audio goes (default: musdb_audio/ beside --out)",
    )
    idx.add_argument("--seed", type=int, default=0, help="folder: split hashing seed")
    idx.set_defaults(func=_index)

    b = sub.add_parser("build-corpus", help="render symbolic music into an audio corpus")
    b.add_argument(
        "--source",
        action="append",
        required=True,
        help="music21:bach|essen|ryans|oneills|nottingham or midi:DIR (repeatable)",
    )
    b.add_argument("--renderer", choices=("fluidsynth", "ddsp"), default="fluidsynth")
    b.add_argument("--out", type=Path, required=True, help="corpus directory")
    b.add_argument("--limit", type=int, help="at most this many pieces per source")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--sample-rate", type=int, default=32000)
    b.add_argument("--channels", type=int, choices=(1, 2), default=1)
    b.add_argument("--versions", type=int, default=1, help="renderings per piece (default 1)")
    b.add_argument("--max-seconds", type=float, default=120.0, help="cut pieces at this length")
    b.add_argument("--soundfont", default=None, help="SoundFont for fluidsynth (.sf2)")
    b.set_defaults(func=_build_corpus)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _index(args: argparse.Namespace) -> int:
    from audiogen.data import fma, folder, musdb
    from audiogen.data.manifest import write_manifest

    if args.fma:
        report = fma.index_fma(args.fma, min_duration=args.min_duration)
    elif args.musdb:
        audio_dir = args.audio_dir or args.out.parent / "musdb_audio"
        report = musdb.index_musdb(
            args.musdb,
            audio_dir=audio_dir,
            no_vocals=args.no_vocals,
            min_duration=args.min_duration,
        )
    else:
        report = folder.index_folder(args.folder, min_duration=args.min_duration, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(args.out, report.items)
    report_path = args.out.parent / "index_report.json"
    report.write(report_path)
    print(report.summary())
    print(f"wrote {args.out} and {report_path}")
    return 0


def _build_corpus(args: argparse.Namespace) -> int:
    from audiogen.data.corpus import DEFAULT_SOUNDFONT, CorpusConfig, build_corpus
    from audiogen.errors import UserError

    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    if args.versions < 1:
        raise UserError("--versions must be at least 1")
    cfg = CorpusConfig(
        sources=args.source,
        out=args.out,
        renderer=args.renderer,
        limit=args.limit,
        seed=args.seed,
        sample_rate=args.sample_rate,
        channels=args.channels,
        versions=args.versions,
        max_seconds=args.max_seconds,
        soundfont=args.soundfont or DEFAULT_SOUNDFONT,
    )
    result = build_corpus(cfg)
    print(result.report.summary())
    print(
        f"rendered {result.rendered}, resumed {result.resumed}, in {result.seconds:.1f} s; "
        f"wrote {args.out / 'manifest.jsonl'}"
    )
    return 0
