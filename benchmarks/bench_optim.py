"""AdamW variants side by side on the toy regression MLP: loss, step time, state bytes.

Contenders: torch AdamW in fp32; torch AdamW on bf16 parameters (round-to-nearest);
torchao ``_AdamW(bf16_stochastic_round=True)`` (torch.compile inside); torch-optimi AdamW
with Kahan summation; audiogen's AdamW with stochastic rounding. Every run sees the same
initial weights and batches. Step time is the optimizer step alone (median over steps
after the first; the first, which includes torchao's compile, is reported separately).

    python benchmarks/bench_optim.py [--device cpu|cuda] [--steps 300] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from audiogen.train import toy
from audiogen.train.optim import AdamW


@dataclass
class Contender:
    name: str
    param_dtype: torch.dtype
    make: Callable[[list[torch.nn.Parameter], dict], torch.optim.Optimizer]


@dataclass
class Result:
    name: str
    final_loss: float | None = None  # held-out MSE, weights cast to fp32
    train_loss: float | None = None  # mean training loss over the last 20 steps
    step_ms: float | None = None  # median optimizer step, first step excluded
    first_step_ms: float | None = None
    total_s: float | None = None  # whole run: forward, backward and optimizer
    state_bytes_per_param: float | None = None  # param + grad + optimizer state
    loss_vs_fp32: float | None = None
    step_vs_torch_bf16: float | None = None
    error: str | None = None


def _torchao(params, hp):
    try:
        from torchao.optim import _AdamW
    except ImportError:
        try:
            from torchao.prototype.low_bit_optim import _AdamW
        except ImportError:
            raise RuntimeError("torchao is not installed (pip install torchao)") from None
    return _AdamW(params, bf16_stochastic_round=True, **hp)


def _optimi(params, hp):
    try:
        from optimi import AdamW as OptimiAdamW
    except ImportError:
        raise RuntimeError("torch-optimi is not installed (pip install torch-optimi)") from None
    return OptimiAdamW(params, kahan_sum=True, **hp)


CONTENDERS = [
    Contender("torch AdamW fp32", torch.float32, lambda p, hp: torch.optim.AdamW(p, **hp)),
    Contender("torch AdamW bf16 (RNE)", torch.bfloat16, lambda p, hp: torch.optim.AdamW(p, **hp)),
    Contender("torchao _AdamW bf16 SR", torch.bfloat16, _torchao),
    Contender("torch-optimi AdamW bf16 Kahan", torch.bfloat16, _optimi),
    Contender("audiogen AdamW bf16 SR", torch.bfloat16, lambda p, hp: AdamW(p, **hp)),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(c: Contender, *, args: argparse.Namespace, device: torch.device) -> Result:
    """Train the toy MLP with contender ``c``; all runs share weights and batches."""
    cfg = toy.ToyRecipe()
    cfg.model = toy.ToyModelConfig(in_dim=args.in_dim, hidden=args.hidden, out_dim=args.out_dim)
    data = toy.build_dataset(cfg)
    torch.manual_seed(0)
    model = toy.build_model(cfg).to(device=device, dtype=c.param_dtype)
    params = list(model.parameters())
    hp = dict(lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    try:
        opt = c.make(params, hp)
    except RuntimeError as e:
        return Result(c.name, error=str(e))
    order = torch.randint(
        0, len(data), (args.steps, args.batch), generator=torch.Generator().manual_seed(1)
    )
    step_times, losses = [], []
    start = time.perf_counter()
    for s in range(args.steps):
        batch = data.get_batch(order[s].tolist())
        x, y = batch.x.to(device, c.param_dtype), batch.y.to(device)
        loss = F.mse_loss(model(x).float(), y)
        loss.backward()
        _sync(device)
        t0 = time.perf_counter()
        try:
            opt.step()
        except Exception as e:  # noqa: BLE001 - e.g. torch.compile without a C++ compiler
            return Result(c.name, error=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
        _sync(device)
        step_times.append(time.perf_counter() - t0)
        opt.zero_grad(set_to_none=False)  # keep grads allocated: they count as state
        losses.append(loss.item())
    total = time.perf_counter() - start
    numel = sum(p.numel() for p in params)
    state = sum(p.nbytes + (p.grad.nbytes if p.grad is not None else 0) for p in params)
    for st in opt.state.values():
        state += sum(v.nbytes for v in st.values() if isinstance(v, torch.Tensor))
    model_cpu = model.to("cpu")
    return Result(
        c.name,
        final_loss=toy.evaluate(model_cpu, data),
        train_loss=statistics.fmean(losses[-20:]),
        step_ms=1e3 * statistics.median(step_times[1:]),
        first_step_ms=1e3 * step_times[0],
        total_s=total,
        state_bytes_per_param=state / numel,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--in-dim", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--out-dim", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_optim.json"))
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA device is available")
    device = torch.device(args.device)
    results = [run(c, args=args, device=device) for c in CONTENDERS]
    ref, rne = results[0], results[1]
    for r in results:
        if r.final_loss is not None and ref.final_loss:
            r.loss_vs_fp32 = r.final_loss / ref.final_loss
        if r.step_ms is not None and rne.step_ms:
            r.step_vs_torch_bf16 = r.step_ms / rne.step_ms
    numel = sum(
        p.numel()
        for p in toy.build_model(
            toy.ToyRecipe(
                model=toy.ToyModelConfig(
                    in_dim=args.in_dim, hidden=args.hidden, out_dim=args.out_dim
                )
            )
        ).parameters()
    )
    cols = ["eval MSE", "vs fp32", "step ms", "vs bf16", "1st ms", "B/param", "total s"]
    header = f"{'optimizer':32s} " + " ".join(f"{c:>9s}" for c in cols)
    print(
        f"toy MLP, {numel} params, {args.steps} steps, batch {args.batch}, lr {args.lr}, "
        f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(header)
    for r in results:
        if r.error:
            print(f"{r.name:32s} unavailable: {r.error}")
            continue
        print(
            f"{r.name:32s} {r.final_loss:9.4f} {r.loss_vs_fp32:8.3f} {r.step_ms:8.3f} "
            f"{r.step_vs_torch_bf16:8.2f} {r.first_step_ms:9.1f} {r.state_bytes_per_param:8.2f} "
            f"{r.total_s:8.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    meta.update(
        params=numel,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        machine=platform.processor() or platform.machine(),
    )
    args.out.write_text(
        json.dumps({"config": meta, "results": [asdict(r) for r in results]}, indent=2) + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
