"""Codec speed: audiogen vs the `encodec` package (24 kHz) and vs HF transformers (32 kHz).

Both sides get identical random weights (audiogen's are converted from the peer), the same
audio, and run encode + decode in this one process, alternating run by run.
Codes are checked equal and the audio difference is reported, so the speed comparison is
between implementations that give the same output. Prints a table and writes JSON.

    python benchmarks/bench_codec.py --seconds 10 --threads 1 --device cpu
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from audiogen.codecs.convert import from_encodec, from_hf_encodec


def _randomize_codebooks(model: torch.nn.Module, scale: float) -> None:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith(".embed"):
                buf.copy_(torch.randn(buf.shape, generator=g) * scale)
            elif name.endswith(".inited"):
                buf.fill_(1.0)


def _timed(fn: Callable[[], object], device: str) -> tuple[float, float, object]:
    """Wall seconds, process CPU seconds, and the result of ``fn()``.

    CPU time is reported too because on a shared machine wall time includes the time
    the process waited for a core; with ``--threads 1`` CPU time is the steadier measure.
    """
    if device == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0, out


def _bf16_difference(ours, x, codes, audio, repeats: int, device: str) -> dict:
    """audiogen's codec cast to bf16 against itself in fp32: time, codes, SI-SDR.

    ``audio`` is the fp32 decode of the fp32 ``codes``; the bf16 decoder gets the same codes,
    so the SI-SDR is the decoder's bf16 error; the codes row is the encoder's (how many
    bf16 codes equal the fp32 ones)."""
    from audiogen.eval.metrics import si_sdr

    low = copy.deepcopy(ours).to(torch.bfloat16)
    xb = x.to(torch.bfloat16)
    with torch.inference_mode():
        times = []
        for _ in range(max(1, min(repeats, 2))):
            seconds, _, low_codes = _timed(lambda: low.encode(xb), device)
            times.append(seconds + _timed(partial(low.decode, low_codes), device)[0])
        ref = audio.float().flatten()
        got = low.decode(codes).float().flatten()
    return {
        "bf16_s": min(times),
        "bf16_codes_equal_fraction": float((low_codes == codes).float().mean()),
        "bf16_vs_fp32_decode_si_sdr_db": float(si_sdr(ref, got)),
    }


def _compare(name, peer_fn, ours, x, repeats, device, sample_rate, bf16=False) -> dict:
    def ours_fn():
        return ours.decode(ours.encode(x))

    peer_fn(), ours_fn()  # warm-up (allocator, kernel selection)
    # Alternate the two sides run by run and keep each run's pair: on a shared machine
    # load drifts, and a pair sees nearly the same load, so the median of the per-pair
    # ratios is steadier than a ratio of separately taken bests.
    t_peer, t_ours, c_peer, c_ours, ratios = [], [], [], [], []
    for _ in range(repeats):
        tp, cp, (peer_codes, peer_audio) = _timed(peer_fn, device)
        to, co, audio = _timed(ours_fn, device)
        t_peer.append(tp)
        t_ours.append(to)
        c_peer.append(cp)
        c_ours.append(co)
        ratios.append(tp / to)
    with torch.inference_mode():
        codes = ours.encode(x)
    seconds = x.shape[-1] / sample_rate
    extra = _bf16_difference(ours, x, codes, audio, repeats, device) if bf16 else {}
    return extra | {
        "peer": name,
        "audio_seconds": seconds,
        "peer_s": min(t_peer),
        "audiogen_s": min(t_ours),
        "peer_rtf": min(t_peer) / seconds,
        "audiogen_rtf": min(t_ours) / seconds,
        "speedup_of_best": min(t_peer) / min(t_ours),
        "speedup_median_paired": statistics.median(ratios),
        "runs_peer_s": t_peer,
        "runs_audiogen_s": t_ours,
        "peer_cpu_s": min(c_peer),
        "audiogen_cpu_s": min(c_ours),
        "speedup_cpu_time": min(c_peer) / min(c_ours),
        "codes_equal": bool(torch.equal(codes.cpu(), peer_codes.cpu())),
        "max_abs_diff": float((audio - peer_audio).abs().max()),
    }


def bench_encodec(seconds: float, repeats: int, device: str, bf16: bool = False) -> dict:
    from encodec import EncodecModel

    peer = EncodecModel.encodec_model_24khz(pretrained=False)
    with torch.no_grad():
        scale = float(peer.encoder(torch.randn(1, 1, 2400) * 0.3).std())
    _randomize_codebooks(peer, scale)
    peer.set_target_bandwidth(6.0)
    peer = peer.to(device).eval()
    ours = from_encodec(peer).to(device).prepare_for_inference()
    x = torch.randn(1, 1, int(seconds * 24_000), device=device) * 0.3

    @torch.inference_mode()
    def peer_fn():
        frames = peer.encode(x)
        return torch.cat([c for c, _ in frames], -1), peer.decode(frames)

    return _compare("encodec 24 kHz, 6 kbps", peer_fn, ours, x, repeats, device, 24_000, bf16)


def bench_hf(seconds: float, repeats: int, device: str, bf16: bool = False) -> dict:
    import transformers

    config = transformers.EncodecConfig(
        sampling_rate=32_000,
        upsampling_ratios=[8, 5, 4, 4],
        target_bandwidths=[2.2],
        num_filters=64,
        codebook_size=2048,
        use_causal_conv=False,
        normalize=False,
        use_conv_shortcut=False,
    )
    peer = transformers.EncodecModel(config).eval()
    with torch.no_grad():
        scale = float(peer.encoder(torch.randn(1, 1, 3200) * 0.3).std())
    _randomize_codebooks(peer, scale)
    peer = peer.to(device)
    ours = from_hf_encodec(peer).to(device).prepare_for_inference()
    x = torch.randn(1, 1, int(seconds * 32_000), device=device) * 0.3

    @torch.inference_mode()
    def peer_fn():
        out = peer.encode(x, return_dict=True)
        audio = peer.decode(out.audio_codes, out.audio_scales, return_dict=True).audio_values
        return out.audio_codes[0], audio

    return _compare("HF EnCodec 32 kHz", peer_fn, ours, x, repeats, device, 32_000, bf16)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--seconds", type=float, default=10.0, help="audio length (default 10)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per side")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--peers", default="encodec,hf", help="comma list: encodec, hf")
    p.add_argument(
        "--malloc",
        choices=("default", "keep"),
        default="default",
        help="keep: glibc keeps freed memory (what the audiogen command sets); applies to "
        "both sides, since they share the process",
    )
    p.add_argument(
        "--bf16",
        action="store_true",
        help="also time audiogen's codec cast to bf16 and report its difference from fp32 "
        "(codes equal, SI-SDR of the decodes); slow on CPUs without native bf16",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_codec.json"))
    args = p.parse_args(argv)
    if args.malloc == "keep":
        from audiogen.runtime import keep_freed_memory

        if not keep_freed_memory():
            raise SystemExit("--malloc keep: this C library cannot be tuned (not glibc?)")
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    results = []
    for peer in args.peers.split(","):
        fn = {"encodec": bench_encodec, "hf": bench_hf}[peer.strip()]
        results.append(fn(args.seconds, args.repeats, args.device, args.bf16))
    report = {
        "device": args.device,
        "threads": torch.get_num_threads(),
        "malloc": args.malloc,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "results": results,
    }
    print(f"{'peer':24} {'peer s':>7} {'ours s':>7} {'peer RTF':>8} {'ours RTF':>8} {'ratio':>6}")
    for r in results:
        print(
            f"{r['peer']:24} {r['peer_s']:7.3f} {r['audiogen_s']:7.3f} {r['peer_rtf']:8.3f} "
            f"{r['audiogen_rtf']:8.3f} {r['speedup_median_paired']:5.2f}x  "
            f"(best/best {r['speedup_of_best']:.2f}x, CPU time {r['peer_cpu_s']:.2f}/"
            f"{r['audiogen_cpu_s']:.2f} s = {r['speedup_cpu_time']:.2f}x) "
            f"codes equal: {r['codes_equal']}, "
            f"max |diff| {r['max_abs_diff']:.1e}"
        )
        if "bf16_s" in r:
            print(
                f"{'':24} audiogen bf16 {r['bf16_s']:.3f} s "
                f"({r['audiogen_s'] / r['bf16_s']:.2f}x its fp32), codes equal to fp32: "
                f"{r['bf16_codes_equal_fraction']:.1%}, decode SI-SDR vs fp32: "
                f"{r['bf16_vs_fp32_decode_si_sdr_db']:.1f} dB"
            )
    print("times are the best run; ratio = median over runs of peer time / audiogen time")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
