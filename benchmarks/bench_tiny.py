"""End-to-end speed of the bundled tiny model: seconds to generate N seconds of audio.

Times what `audiogen generate` does after loading: text encoding (MiniLM) and the beat
clock, the LM with CFG (every guidance branch in one batch: two rows, plus one each for the
melody's and the clock's own scales when the model's settings give them) and KV cache, and
codec decoding, with and without a melody.
Median of --repeats runs after one warm-up run; the stages are timed separately too.

    python benchmarks/bench_tiny.py [--model tiny] [--seconds 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

MELODY = Path(__file__).resolve().parents[1] / "audiogen/assets/melodies/fare_you_well.mid"
PROMPT = "a lively Irish reel in D major for solo fiddle at 120 bpm"


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument(
        "--dtype",
        choices=["fp32", "bf16", "fp16", "int8"],
        default=None,
        help="LM precision (default: audiogen's rule for this machine)",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/tiny.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from audiogen.pipeline import MusicGenerator

    gen, t_load = timed(MusicGenerator.load, args.model, device="cpu", dtype=args.dtype)
    gen.set_generation_params(duration=args.seconds)

    frames = int(round(args.seconds * gen.frame_rate))

    def text_only():  # the conditions generate_codes builds (caption, beat clock, CFG null)
        gen.branch_conditions([PROMPT], None, frames)

    chroma = gen.melody_chroma(MELODY)
    runs: dict[str, list[float]] = {k: [] for k in ("e2e", "e2e_melody", "text", "lm", "decode")}
    with torch.inference_mode():
        for i in range(args.repeats + 1):
            _, t_e2e = timed(gen.generate, [PROMPT], seed=i)
            _, t_mel = timed(gen.generate_with_melody, [PROMPT], MELODY, seed=i)
            _, t_text = timed(text_only)
            codes, t_lm = timed(gen.generate_codes, [PROMPT], chromas=[chroma], seed=i)
            _, t_dec = timed(gen.codec.decode, codes)
            if i == 0:
                continue  # warm-up
            for k, v in zip(runs, (t_e2e, t_mel, t_text, t_lm, t_dec), strict=True):
                runs[k].append(v)
    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "model": str(args.model),
        "audio_seconds": args.seconds,
        "threads": args.threads,
        "precision": gen.precision,
        "load_seconds": t_load,
        "median_seconds": med,
        "runs": runs,
        "realtime_factor": args.seconds / med["e2e"],
        "frames": int(round(args.seconds * gen.frame_rate)),
        "lm_ms_per_frame": 1000 * med["lm"] / round(args.seconds * gen.frame_rate),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    print(
        f"{args.seconds:g} s of audio: {med['e2e']:.2f} s end to end "
        f"({med['e2e_melody']:.2f} s with a melody; text {med['text']:.3f} s, "
        f"LM {med['lm']:.2f} s, decode {med['decode']:.3f} s; load {t_load:.1f} s; "
        f"{args.threads} threads, LM in {gen.precision})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
