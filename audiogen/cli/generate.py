"""``audiogen generate``: text (and melody) to music with a generator directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from audiogen.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate music from text prompts (optionally following a melody)",
        description="Generate music from one or more text prompts with a generator directory "
        "(codec/ + lm/, e.g. from `audiogen import musicgen` or `audiogen train lm`).",
    )
    p.add_argument(
        "prompts",
        nargs="*",
        help="text prompts (one output file each); a tempo stated as 'N bpm' drives the beat "
        "clock of models that have one (the bundled tiny model does)",
    )
    p.add_argument("--prompts-file", help="a text file with one prompt per line")
    p.add_argument("-o", "--out", required=True, help="output audio; several prompts: OUT_N.wav")
    p.add_argument("--model", default="tiny", help="generator directory (default: bundled tiny)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("--melody", help="melody to follow: audio file or MIDI file")
    # Sampling settings default to the model's own (its generation.json), else the library's.
    p.add_argument(
        "--cfg", type=float, default=None, help="classifier-free guidance coefficient (3.0)"
    )
    p.add_argument(
        "--melody-cfg",
        type=float,
        default=None,
        help="a guidance coefficient of its own for the melody: a third CFG branch, 1.5x the "
        "rows per decode step (the bundled model: 6; equal to --cfg: plain CFG)",
    )
    p.add_argument(
        "--tempo-cfg",
        type=float,
        default=None,
        help="a guidance coefficient of its own for the beat clock (models with one, prompts "
        "stating N bpm): one more CFG branch (equal to --cfg: plain CFG)",
    )
    p.add_argument("--top-k", type=int, default=None, help="(250)")
    p.add_argument("--top-p", type=float, default=None, help="> 0 overrides top-k (0)")
    p.add_argument("--temperature", type=float, default=None, help="(1.0)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument(
        "--dtype",
        choices=["fp32", "bf16", "fp16", "int8"],
        default=None,
        help="LM precision (default: bf16 on CUDA and on CPUs with native bf16, fp16 weights "
        "on other x86 CPUs, int8 weights on the rest; fp32 is the reference)",
    )
    p.set_defaults(func=run)

    a = subparsers.add_parser(
        "assemble",
        help="make a generator directory from a trained codec and LM checkpoint",
        description="Combine `audiogen train codec` and `audiogen train lm` checkpoints (or "
        "any codec / LM model directories) into a generator directory for `generate`.",
    )
    a.add_argument("--codec", required=True, type=Path, help="codec checkpoint directory")
    a.add_argument("--lm", required=True, type=Path, help="LM checkpoint directory")
    a.add_argument("--out", required=True, type=Path, help="generator directory to write")
    a.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a sampling default the directory ships (generation.json), e.g. melody_cfg_coef=6",
    )
    a.set_defaults(func=assemble)


def _prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(args.prompts)
    if args.prompts_file:
        path = Path(args.prompts_file)
        if not path.is_file():
            raise UserError(f"{path}: no such prompts file")
        prompts += [
            ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()
        ]
    if not prompts:
        raise UserError("give at least one prompt (or --prompts-file)")
    return prompts


def output_paths(out: str, n: int) -> list[Path]:
    """One path per prompt: OUT itself for one prompt, OUT_1..OUT_n otherwise."""
    from audiogen.audio import WRITE_FORMATS

    p = Path(out)
    if p.suffix.lower() not in WRITE_FORMATS:
        raise UserError(
            f"{p}: unsupported output format '{p.suffix}' (use one of {', '.join(WRITE_FORMATS)})"
        )
    if not p.parent.is_dir():
        raise UserError(f"{p}: output directory {p.parent} does not exist")
    if n == 1:
        return [p]
    return [p.with_name(f"{p.stem}_{i + 1}{p.suffix}") for i in range(n)]


def run(args: argparse.Namespace) -> int:
    from audiogen import audio
    from audiogen.pipeline import MusicGenerator

    prompts = _prompts(args)
    outs = output_paths(args.out, len(prompts))
    if args.duration <= 0 or args.duration > 600:
        raise UserError(f"--duration {args.duration}: choose 0 < seconds <= 600")
    if args.melody and not Path(args.melody).is_file():
        raise UserError(f"{args.melody}: no such melody file")
    gen = MusicGenerator.load(args.model, device=args.device, dtype=args.dtype)
    given = {
        "top_k": args.top_k,
        "top_p": args.top_p,
        "temperature": args.temperature,
        "cfg_coef": args.cfg,
        "melody_cfg_coef": args.melody_cfg,
        "tempo_cfg_coef": args.tempo_cfg,
    }
    gen.set_generation_params(
        duration=args.duration, **{k: v for k, v in given.items() if v is not None}
    )
    if args.melody:
        wav = gen.generate_with_melody(prompts, args.melody, seed=args.seed, progress=True)
    else:
        wav = gen.generate(prompts, seed=args.seed, progress=True)
    for path, w in zip(outs, wav, strict=True):
        audio.save(path, w, gen.sample_rate)
        print(f"wrote {path} ({w.shape[-1] / gen.sample_rate:.1f} s at {gen.sample_rate} Hz)")
    return 0


def assemble(args: argparse.Namespace) -> int:
    import json

    from audiogen.pipeline import assemble_generator

    generation = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item}: expected KEY=VALUE")
        try:
            generation[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raise UserError(f"--set {item}: {value!r} is not a number or JSON value") from None
    out = assemble_generator(args.codec, args.lm, args.out, generation)
    print(f"wrote {out} (codec/ + lm/)")
    return 0
