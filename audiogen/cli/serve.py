"""``audiogen serve``: the web demo (a Gradio page) on a local port."""

from __future__ import annotations

import argparse
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the web demo (Gradio) on a local port",
        description="Serve a browser page that generates music from a prompt, optionally "
        "following an uploaded melody (MIDI or audio). Offline: no share link, no analytics.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--model", default="tiny", help="generator directory (default: bundled tiny)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument(
        "--max-duration", type=float, default=30.0, help="cap on seconds per request (30)"
    )
    p.add_argument("--max-prompt-chars", type=int, default=300, help="cap on prompt length (300)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audiogen.errors import UserError

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: choose 1..65535")
    if not 0 < args.max_duration <= 600:
        raise UserError(f"--max-duration {args.max_duration}: choose 0 < seconds <= 600")
    if args.max_prompt_chars < 1:
        raise UserError(f"--max-prompt-chars {args.max_prompt_chars}: must be >= 1")

    from audiogen.demo import DemoHandler, Limits
    from audiogen.demo.app import build_app, launch
    from audiogen.pipeline import MusicGenerator

    start = time.perf_counter()
    gen = MusicGenerator.load(args.model, device=args.device)
    limits = Limits(max_duration=args.max_duration, max_prompt_chars=args.max_prompt_chars)
    demo = build_app(DemoHandler(gen, limits))
    print(
        f"loaded {args.model} on {gen.device} in {time.perf_counter() - start:.1f} s; "
        f"serving on http://{args.host}:{args.port} (Ctrl+C stops)",
        flush=True,
    )
    launch(demo, host=args.host, port=args.port, block=True)
    return 0
