"""Training-window throughput of audiogen's SegmentDataset (10 s windows from FLAC).

Shows whether data loading can bound training: the number to compare is windows/second
against the LM's training steps/second times its batch size. Measured for the Dataset
alone and through a DataLoader with workers, at the file's rate and with resampling, and
against a naive reader that decodes each whole file and slices it.

    python benchmarks/bench_data.py                      # synthetic 30 s FLAC files
    python benchmarks/bench_data.py --manifest /work/corpus/m21/manifest.jsonl

Prints a table and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from audiogen.data.manifest import ManifestItem, read_manifest
from audiogen.data.segments import SegmentDataset, collate_segments


def make_flacs(folder: Path, *, count: int, seconds: float, sample_rate: int) -> list[ManifestItem]:
    """Music-like test files: a few decaying partials over noise (FLAC compresses real
    audio far less than pure tones, so tones would flatter decoding speed)."""
    rng = np.random.default_rng(0)
    items = []
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    for k in range(count):
        x = 0.05 * rng.standard_normal(t.size)
        for f in rng.uniform(110, 880, size=6):
            x += 0.1 * np.sin(2 * np.pi * f * t) * np.exp(-(t % 0.5) * 4)
        path = folder / f"clip{k:03d}.flac"
        sf.write(path, (x / np.abs(x).max() * 0.9).astype(np.float32), sample_rate)
        items.append(ManifestItem(str(path), seconds, sample_rate, 1, description=f"clip {k}"))
    return items


def naive_windows(items: list[ManifestItem], n: int, seconds: float) -> float:
    """Windows/s when every window decodes its whole file and slices (no seeking)."""
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(n):
        it = items[int(rng.integers(len(items)))]
        data, sr = sf.read(it.path, dtype="float32", always_2d=True)
        start = int(rng.uniform(0, max(0.0, it.duration - seconds)) * sr)
        torch.from_numpy(data[start : start + int(seconds * sr)].T.copy())
    return n / (time.perf_counter() - t0)


def run(ds: SegmentDataset, *, workers: int, batch_size: int, batches: int) -> float:
    """Windows/s through a DataLoader (``workers`` = 0 means in-process)."""
    loader = DataLoader(
        ds,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_segments,
        persistent_workers=False,
    )
    it = iter(loader)
    next(it)  # worker start-up and first decode are not steady-state
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:
            break
        n += b.wav.shape[0]
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, help="use this manifest instead of synthetic FLACs")
    p.add_argument("--files", type=int, default=16)
    p.add_argument("--file-seconds", type=float, default=30.0)
    p.add_argument("--sample-rate", type=int, default=32000)
    p.add_argument("--segment-seconds", type=float, default=10.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--out", type=Path, default=Path("bench_data.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        if args.manifest:
            items = read_manifest(args.manifest)
            origin = str(args.manifest)
        else:
            items = make_flacs(
                Path(tmp), count=args.files, seconds=args.file_seconds, sample_rate=args.sample_rate
            )
            origin = (
                f"synthetic: {args.files} x {args.file_seconds:g} s FLAC, "
                f"{args.sample_rate} Hz mono"
            )
        src_rate = items[0].sample_rate
        rows = []
        for target in (src_rate, 24000 if src_rate != 24000 else 16000):
            ds = SegmentDataset(
                items,
                segment_seconds=args.segment_seconds,
                sample_rate=target,
                channels=1,
                num_samples=args.batch_size * (args.batches + 1),
            )
            for w in args.workers:
                wps = run(ds, workers=w, batch_size=args.batch_size, batches=args.batches)
                rows.append(
                    {
                        "reader": "SegmentDataset",
                        "target_rate": target,
                        "resample": target != src_rate,
                        "workers": w,
                        "windows_per_s": round(wps, 2),
                        "audio_seconds_per_s": round(wps * args.segment_seconds, 1),
                    }
                )
        n = args.batch_size * args.batches
        wps = naive_windows(items, n, args.segment_seconds)
        rows.append(
            {
                "reader": "naive: decode whole file, slice",
                "target_rate": src_rate,
                "resample": False,
                "workers": 0,
                "windows_per_s": round(wps, 2),
                "audio_seconds_per_s": round(wps * args.segment_seconds, 1),
            }
        )
    result = {
        "benchmark": "training windows per second",
        "data": origin,
        "segment_seconds": args.segment_seconds,
        "batch_size": args.batch_size,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "rows": rows,
    }
    print(f"{'reader':34} {'rate':>6} {'workers':>7} {'windows/s':>10} {'audio s/s':>10}")
    for r in rows:
        print(
            f"{r['reader']:34} {r['target_rate']:>6} {r['workers']:>7} "
            f"{r['windows_per_s']:>10.1f} {r['audio_seconds_per_s']:>10.1f}"
        )
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
