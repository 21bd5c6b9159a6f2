"""Generation speed: audiogen's LM vs HF transformers' MusicGen ``generate``, same weights.

Both models hold the same random weights (a MusicGen-small-shaped decoder by default:
d=1024, 24 layers, 16 heads, 4 codebooks x 2048; ``--tiny`` for a smoke run), the same
text conditions (a tiny random T5 whose output HF projects; audiogen gets the projected,
masked states), CFG 3.0, top-k 250 sampling, and run the same number of decode steps.
HF's final EnCodec decode is stubbed out so only token generation is timed.

    python benchmarks/bench_generate.py --steps 40 --batch 1 --device cpu
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiogen.lm.convert import from_hf_musicgen  # noqa: E402
from audiogen.lm.generate import Conditions, generate  # noqa: E402
from audiogen.lm.quant import Fp16Linear, Int8Linear, quantize_lm  # noqa: E402
from audiogen.lm.sampling import SamplingParams  # noqa: E402
from audiogen.pipeline import default_precision  # noqa: E402


def build_hf(tiny: bool):
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    if tiny:
        dec = dict(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=128, vocab_size=64
        )
    else:  # musicgen-small's decoder
        dec = dict(
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            ffn_dim=4096,
            vocab_size=2048,
        )
    card = dec["vocab_size"]
    dcfg = MusicgenDecoderConfig(
        **dec,
        num_codebooks=4,
        pad_token_id=card,
        bos_token_id=card,
        decoder_start_token_id=card,
        dropout=0.0,
    )
    text = T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4)
    audio = EncodecConfig(
        hidden_size=16,
        num_filters=4,
        codebook_size=card,
        upsampling_ratios=[4, 2],
        num_lstm_layers=1,
        target_bandwidths=[5.0],
        sampling_rate=1000,
    )
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(
        MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=dcfg)
    ).eval()

    class _Out:
        audio_values = torch.zeros(1)

    model.audio_encoder.decode = lambda codes, *a, **k: _Out()  # time tokens only
    return model


def measure_bandwidth(device: str) -> float:
    """Read bandwidth in GB/s: sum over a 512 MiB fp32 tensor (best of 3)."""
    x = torch.ones(128 * 1024 * 1024, device=device)
    best = float("inf")
    for _ in range(3):
        _sync(device)
        t = time.perf_counter()
        x.sum()
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return x.numel() * 4 / best / 1e9


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def decode_step_bytes(lm) -> int:
    """Weight bytes one decode step reads (cross-attention K/V are precomputed)."""
    total = 0
    for name, p in lm.named_parameters():
        if "cross_attn.kv_proj" in name or name.startswith("embed."):
            continue
        total += p.numel() * p.element_size()
    for m in lm.modules():
        if isinstance(m, Int8Linear):  # what its kernel reads
            total += m.weight_int8.numel() + m.scales_bf16.numel() * 2
        elif isinstance(m, Fp16Linear):  # packed fp16 weights
            total += m.in_features * m.out_features * 2
    return total


def prepare(lm32, precision: str):
    """The fp32 LM at a precision: fp32 (itself), bf16, or fp16 / int8 weights (copies)."""
    if precision == "fp32":
        return lm32
    if precision == "bf16":
        return copy.deepcopy(lm32).bfloat16()
    return quantize_lm(lm32, precision, inplace=False)


def compare_precisions(
    lm, cond: Conditions, frames: int, cfg: float, precisions: list[str]
) -> list[dict]:
    """How far each low precision (bf16, int8) departs from fp32 on the same weights: greedy
    CFG tokens over ``frames`` frames (agreement per decode step, first divergence) and the
    CFG-mixed logits of the low-precision model teacher-forced along the fp32 greedy path
    (max abs error, relative to the logits' std). The fp32 path is computed once."""
    greedy = SamplingParams(top_k=1)
    lm32 = lm.float()

    def run(model):
        return generate(
            model, num_frames=frames, cond=cond, cfg_coef=cfg, params=greedy, return_logits=True
        )

    pattern = lm32.config.pattern()
    null = cond.null()

    def teacher_forced(model, seq):
        """CFG-mixed logits of a plain forward over ``seq`` (both branches)."""
        d = model.compute_dtype
        c = model(seq, cross=cond.cross.to(d), cross_mask=cond.cross_mask).logits.float()
        u = model(seq, cross=null.cross.to(d), cross_mask=null.cross_mask).logits.float()
        return u + (c - u) * cfg

    ref = run(lm32)
    seq = pattern.build(ref.codes, special_token=lm32.config.special_token).seq
    ref_logits = teacher_forced(lm32, seq)
    reports = []
    for precision in precisions:
        low = prepare(lm32, precision)
        same = ref.codes == run(low).codes  # [B, K, F]
        diverged = (~same).flatten(0, 1).any(0).nonzero()
        logits = teacher_forced(low, seq)
        diff = (ref_logits - logits).abs()
        reports.append(
            {
                "precision": precision,
                "frames": frames,
                "greedy_token_agreement": float(same.float().mean()),
                "first_divergent_frame": int(diverged[0]) if len(diverged) else None,
                "teacher_forced_max_abs_logit_error": float(diff.max()),
                "teacher_forced_mean_abs_logit_error": float(diff.mean()),
                "logit_std": float(ref_logits.std()),
                "teacher_forced_argmax_agreement": float(
                    (ref_logits.argmax(-1) == logits.argmax(-1)).float().mean()
                ),
            }
        )
    return reports


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny decoder (smoke test)")
    ap.add_argument("--steps", type=int, default=40, help="decode steps per run")
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument(
        "--dtype",
        choices=["default", "fp32", "bf16", "fp16", "int8"],
        nargs="+",
        default=["default", "fp32"],
        help="audiogen's LM precision (default: its rule for this device and model); HF runs "
        "in bf16 for bf16 and in fp32 (its default) otherwise",
    )
    ap.add_argument("--cfg", type=float, default=3.0)
    ap.add_argument("--top-k", type=int, default=250)
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument(
        "--compare",
        type=int,
        default=0,
        metavar="FRAMES",
        help="only measure how far bf16, fp16 and int8 depart from fp32 over FRAMES greedy frames",
    )
    ap.add_argument("--out", default="benchmarks/results/bench_generate.json")
    args = ap.parse_args()
    torch.set_grad_enabled(False)

    hf = build_hf(args.tiny).to(args.device)
    imported = from_hf_musicgen(hf)
    k = imported.config.num_codebooks
    if args.compare:
        b = args.batch[0]
        torch.manual_seed(1)
        ids = torch.randint(1, 64, (b, 12))
        mask = torch.ones(b, 12, dtype=torch.long)
        hidden = hf.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        cond = Conditions(cross=hf.enc_to_dec_proj(hidden), cross_mask=mask.bool())
        reports = compare_precisions(
            imported.lm, cond, args.compare, args.cfg, ["bf16", "fp16", "int8"]
        )
        for r in reports:
            r.update(model="tiny" if args.tiny else "musicgen-small decoder", batch=b)
            print(json.dumps(r))
        report = {"benchmark": "bench_generate --compare", "results": reports}
        out_path = Path(args.out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(report, indent=2) + "\n")
        return
    frames = args.steps - k + 1  # S - 1 = F + K - 1 decode steps
    results = []
    lm32 = imported.lm.to(args.device)
    hf_times: dict[tuple[str, int], float] = {}
    # HF's weights are converted in place: every fp32 row runs before any bf16 one.
    for requested in sorted(args.dtype, key=lambda d: d == "bf16"):
        dtype_name = requested
        if requested == "default":
            dtype_name = default_precision(torch.device(args.device))
        hf_dtype = "bf16" if dtype_name == "bf16" else "fp32"
        hf_d = hf.to(torch.bfloat16 if hf_dtype == "bf16" else torch.float32)
        lm = prepare(lm32, dtype_name)
        for b in args.batch:
            torch.manual_seed(1)
            sc = 12
            ids = torch.randint(1, 64, (b, sc), device=args.device)
            mask = torch.ones(b, sc, dtype=torch.long, device=args.device)
            mask[:, sc // 2 + 1 :] = 0 if b == 1 else 1
            hidden = hf_d.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            cross = hf_d.enc_to_dec_proj(hidden) * mask[..., None]
            cond = Conditions(cross=cross, cross_mask=mask.bool())
            params = SamplingParams(top_k=args.top_k)

            def run_ours(n_frames: int, seed: int, lm=lm, cond=cond, params=params):
                gen = torch.Generator(args.device).manual_seed(seed)
                return generate(
                    lm,
                    num_frames=n_frames,
                    cond=cond,
                    cfg_coef=args.cfg,
                    params=params,
                    generator=gen,
                )

            def run_hf(n_steps: int, hf_d=hf_d, ids=ids, mask=mask):
                return hf_d.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    do_sample=True,
                    top_k=args.top_k,
                    guidance_scale=args.cfg,
                    max_new_tokens=n_steps,
                )

            run_ours(2, 0)  # warm-up
            _sync(args.device)
            t = time.perf_counter()
            out = run_ours(frames, 0)
            _sync(args.device)
            ours_s = time.perf_counter() - t
            row = {
                "requested": requested,
                "dtype": dtype_name,
                "hf_dtype": hf_dtype,
                "batch": b,
                "steps": out.steps,
                "audiogen_s": ours_s,
                "audiogen_ms_per_step": 1e3 * ours_s / out.steps,
                "audiogen_tokens_per_s": b * k * out.steps / ours_s,
            }
            if not args.skip_hf:
                if (hf_dtype, b) not in hf_times:
                    run_hf(k + 1)
                    _sync(args.device)
                    t = time.perf_counter()
                    run_hf(args.steps)
                    _sync(args.device)
                    hf_times[hf_dtype, b] = time.perf_counter() - t
                hf_s = hf_times[hf_dtype, b]
                row.update(
                    {
                        "hf_s": hf_s,
                        "hf_ms_per_step": 1e3 * hf_s / args.steps,
                        "hf_tokens_per_s": b * k * args.steps / hf_s,
                        "speedup": hf_s / ours_s,
                    }
                )
            row["weight_bytes_per_step"] = decode_step_bytes(lm)
            results.append(row)
            print(json.dumps(row))

    bw = measure_bandwidth(args.device)
    for row in results:
        floor = row["weight_bytes_per_step"] / (bw * 1e9)
        row["bandwidth_floor_ms_per_step"] = 1e3 * floor
        row["audiogen_vs_floor"] = row["audiogen_ms_per_step"] / (1e3 * floor)
    report = {
        "benchmark": "bench_generate",
        "model": "tiny" if args.tiny else "musicgen-small decoder (random weights)",
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "cfg_coef": args.cfg,
        "top_k": args.top_k,
        "read_bandwidth_gb_s": bw,
        "results": results,
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"read bandwidth {bw:.1f} GB/s")
    for r in results:
        line = (
            f"{r['requested']} ({r['dtype']}) B={r['batch']}: "
            f"audiogen {r['audiogen_ms_per_step']:.1f} ms/step "
            f"({r['audiogen_tokens_per_s']:.1f} tok/s)"
        )
        if "hf_s" in r:
            line += (
                f", HF {r['hf_dtype']} {r['hf_ms_per_step']:.1f} ms/step "
                f"({r['hf_tokens_per_s']:.1f} tok/s), "
                f"speedup {r['speedup']:.2f}x"
            )
        line += f", floor {r['bandwidth_floor_ms_per_step']:.1f} ms/step"
        print(line)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
