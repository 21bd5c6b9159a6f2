"""FAD: audiogen vs frechet-audio-distance, side by side in one run.

1. Fréchet distance on 2 x N embeddings (default N = 10,000) of 128-d and 2048-d:
   statistics (mean, covariance) plus distance, both tools on the same arrays.
2. End to end on the same files with the same random-weight VGGish (torchvggish's module;
   the peer is handed it instead of downloading from torch.hub): load, embed, FAD.

Prints seconds and the speed-up, writes JSON (default benchmarks/results/bench_fad.json).
Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_fad.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch


def _peer():
    """frechet_audio_distance's class, imported with a placeholder for ``laion_clap``
    (which downloads tokenizers when imported)."""
    stubbed = "laion_clap" not in sys.modules
    if stubbed:
        sys.modules["laion_clap"] = types.ModuleType("laion_clap")
    try:
        from frechet_audio_distance.fad import FrechetAudioDistance
    finally:
        if stubbed:
            del sys.modules["laion_clap"]
    return FrechetAudioDistance


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_distance(n: int, dims: list[int]) -> list[dict]:
    from audiogen.eval.fad import EmbeddingStats

    fad_cls = _peer()
    rows = []
    for d in dims:
        rng = np.random.default_rng(d)
        mix = rng.standard_normal((d, d)) / np.sqrt(d)
        a = (rng.standard_normal((n, d)) @ mix).astype(np.float32)
        b = (rng.standard_normal((n, d)) @ mix + 0.05).astype(np.float32)

        def ours(a=a, b=b):
            sa = EmbeddingStats.from_embeddings(a, embedding="x", version="x")
            sb = EmbeddingStats.from_embeddings(b, embedding="x", version="x")
            return sa.distance(sb)

        def peer(a=a, b=b):
            ma, ca = fad_cls.calculate_embd_statistics(None, a)
            mb, cb = fad_cls.calculate_embd_statistics(None, b)
            return fad_cls.calculate_frechet_distance(None, ma, ca, mb, cb)

        v_ours, t_ours = _timed(ours)
        v_peer, t_peer = _timed(peer)
        row = {
            "case": f"distance {d}-d, 2 x {n}",
            "audiogen_s": t_ours,
            "peer_s": t_peer,
            "speedup": t_peer / t_ours,
            "audiogen_value": v_ours,
            "peer_value": float(v_peer),
            "rel_diff": abs(v_ours - v_peer) / abs(v_peer),
        }
        rows.append(row)
        print(
            f"{row['case']}: audiogen {t_ours:.2f} s, frechet-audio-distance {t_peer:.2f} s, "
            f"x{row['speedup']:.1f}, rel diff {row['rel_diff']:.1e}",
            flush=True,
        )
    return rows


class _PeerVGGish:
    """The torch.hub VGGish wrapper's forward(audio, sr): torchvggish front end + VGG."""

    def __init__(self, vgg):
        self.vgg = vgg

    def forward(self, x, fs):
        from torchvggish import vggish_input

        with torch.no_grad():
            return self.vgg(vggish_input.waveform_to_examples(x, fs).detach())


def bench_files(num_files: int, seconds: float) -> dict:
    from torchvggish.torchvggish import VGG, make_layers

    from audiogen import audio
    from audiogen.eval.embeddings.vggish import VGGish
    from audiogen.eval.run import evaluate_fad

    torch.manual_seed(0)
    vgg = VGG(make_layers(), postprocess=False).eval()
    # frechet-audio-distance's default: no PCA, final ReLU removed.
    vgg.embeddings = torch.nn.Sequential(*list(vgg.embeddings.children())[:-1])
    ours = VGGish(activation=False, pca=False).eval()
    ours.load_state_dict(vgg.state_dict(), strict=False)  # same keys; PCA buffers unused
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        dirs = []
        for name, level in (("ref", 0.0), ("gen", 0.05)):
            d = Path(tmp) / name
            d.mkdir()
            for i in range(num_files):
                t = np.arange(int(seconds * 16000)) / 16000
                f0 = rng.uniform(150, 600)
                x = 0.3 * np.sin(2 * np.pi * f0 * t) + (0.01 + level) * rng.standard_normal(t.size)
                audio.save(d / f"{i}.wav", torch.from_numpy(x).float()[None], 16000)
            dirs.append(d)
        fad_cls = _peer()
        peer = fad_cls.__new__(fad_cls)  # skip __init__: it downloads from torch.hub
        peer.model_name, peer.sample_rate, peer.channels = "vggish", 16000, 1
        peer.verbose, peer.audio_load_worker, peer.device = False, 8, torch.device("cpu")
        peer.model = _PeerVGGish(vgg)
        v_peer, t_peer = _timed(lambda: peer.score(str(dirs[0]), str(dirs[1])))
        (rep, _), t_ours = _timed(
            lambda: evaluate_fad(reference=dirs[0], generated=dirs[1], model=ours, progress=False)
        )
    row = {
        "case": f"end to end, VGGish random weights, 2 x {num_files} files of {seconds:g} s",
        "audiogen_s": t_ours,
        "peer_s": t_peer,
        "speedup": t_peer / t_ours,
        "audiogen_value": rep.summary["fad"],
        "peer_value": float(v_peer),
        "rel_diff": abs(rep.summary["fad"] - v_peer) / abs(v_peer),
    }
    print(
        f"{row['case']}: audiogen {t_ours:.2f} s, frechet-audio-distance {t_peer:.2f} s, "
        f"x{row['speedup']:.1f}, FAD {row['audiogen_value']:.6g} vs {row['peer_value']:.6g}",
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="embeddings per set")
    ap.add_argument("--dims", type=int, nargs="+", default=[128, 2048])
    ap.add_argument("--files", type=int, default=20, help="files per set (end to end)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each file")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_fad.json"))
    args = ap.parse_args()
    rows = bench_distance(args.n, args.dims) + [bench_files(args.files, args.seconds)]
    result = {
        "benchmark": "fad",
        "threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "rows": rows,
    }
    from audiogen.fileio import atomic_write_text

    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
