"""Codec quality: a trained audiogen codec against Opus (ffmpeg libopus) on held-out audio.

For each test-split item of a manifest, the first ``--seconds`` are encoded and decoded by
the codec and by Opus at ``--opus-kbps`` (libopus' lowest rate, 6 kbps, is already above a
small codec's rate, so Opus gets the same or more bits), then scored against the original
with the multi-scale mel distance (lower is better) and SI-SDR (higher is better), and by
how much each changes the partials' prominence above the floor between them in three octave
bands (``audiogen.eval.metrics.partial_prominence``; negative: the valleys filled in).
Prints a table and writes JSON.

    python benchmarks/bench_codec_quality.py --codec runs/codec_tiny/checkpoints/latest \\
        --manifest corpus/manifest.jsonl
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from audiogen import audio
from audiogen.codecs import Codec
from audiogen.data.manifest import read_manifest
from audiogen.eval.metrics import (
    PROMINENCE_BANDS,
    bitrate_kbps,
    multiscale_mel_distance,
    partial_prominence,
    si_sdr,
)


def opus_roundtrip(wav: torch.Tensor, sr: int, kbps: float, tmp: Path) -> torch.Tensor:
    """Encode [1, T] audio with libopus at ``kbps`` and decode it back at ``sr``."""
    src, enc, dec = tmp / "in.wav", tmp / "x.opus", tmp / "out.wav"
    audio.save(src, wav, sr)
    run = dict(check=True, capture_output=True)
    subprocess.run(
        ["ffmpeg", "-y", "-v", "error", "-i", str(src), "-c:a", "libopus", "-b:a",
         f"{kbps}k", str(enc)], **run,
    )  # fmt: skip
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(enc), "-ar", str(sr), str(dec)], **run)
    out, _ = audio.load(dec, sample_rate=sr, channels=1)
    return out[:, : wav.shape[-1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codec", required=True, help="codec directory, or a training run directory")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--opus-kbps", type=float, default=6.0)
    ap.add_argument("--out", default="benchmarks/results/bench_codec_quality.json")
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed for the Opus baseline (apt-get install ffmpeg)")

    from audiogen.train.checkpoint import resolve_checkpoint

    path = Path(args.codec)
    if (path / "checkpoints").is_dir():  # a training run: its latest checkpoint
        path = resolve_checkpoint(path)
    codec = Codec.load(path).prepare_for_inference()
    sr = codec.sample_rate
    items = [i for i in read_manifest(args.manifest) if i.split == args.split][: args.items]
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d, torch.inference_mode():
        for it in items:
            wav, _ = audio.load(it.path, sample_rate=sr, channels=1, duration=args.seconds)
            rec = codec.decode(codec.encode(wav[None]))[0, :, : wav.shape[-1]]
            opus = opus_roundtrip(wav, sr, args.opus_kbps, Path(d))
            prominence = {
                name: partial_prominence(x, sr)
                for name, x in (("real", wav), ("codec", rec), ("opus", opus))
            }
            rows.append(
                dict(
                    item=Path(it.path).name,
                    codec_mel=multiscale_mel_distance(wav, rec, sr),
                    opus_mel=multiscale_mel_distance(wav, opus, sr),
                    codec_si_sdr=float(si_sdr(wav, rec)),
                    opus_si_sdr=float(si_sdr(wav, opus)),
                    # partials above the floor between them, per band: codec minus input
                    **{
                        f"{name}_prominence_change_{lo:g}_{hi:g}hz": b - a
                        for name in ("codec", "opus")
                        for (lo, hi), a, b in zip(
                            PROMINENCE_BANDS, prominence["real"], prominence[name], strict=True
                        )
                    },
                )
            )
    codec_kbps = bitrate_kbps(
        num_codebooks=codec.num_codebooks,
        cardinality=codec.cardinality,
        frame_rate=codec.frame_rate,
    )
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0] if k != "item"}
    result = dict(
        benchmark="bench_codec_quality",
        codec=str(args.codec),
        codec_kbps=codec_kbps,
        opus_kbps=args.opus_kbps,
        items=len(rows),
        seconds=args.seconds,
        mean=mean,
        rows=rows,
        wall_s=time.perf_counter() - t0,
    )
    print(f"{len(rows)} items x {args.seconds:g} s, split {args.split}")
    bands = " ".join(f"{lo / 1000:g}-{hi / 1000:g}k" for lo, hi in PROMINENCE_BANDS)
    print(f"{'':24}{'kbps':>8}{'mel dist':>10}{'SI-SDR dB':>11}   prominence change dB ({bands})")
    for name, kbps, key in (
        ("audiogen codec", codec_kbps, "codec"),
        ("Opus", args.opus_kbps, "opus"),
    ):
        change = [mean[f"{key}_prominence_change_{lo:g}_{hi:g}hz"] for lo, hi in PROMINENCE_BANDS]
        print(
            f"{name:24}{kbps:8.2f}{mean[key + '_mel']:10.3f}{mean[key + '_si_sdr']:11.2f}   "
            + " ".join(f"{c:+5.1f}" for c in change)
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
