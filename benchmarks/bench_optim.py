"""AdamW variants side by side on the toy regression MLP: loss, step time, state bytes.

Contenders: torch AdamW in fp32; torch AdamW on bf16 parameters (round-to-nearest);
torchao ``_AdamW(bf16_stochastic_round=True)`` (torch.compile inside); torch-optimi AdamW
with Kahan summation; audiogen's AdamW with stochastic rounding (its compiled one-pass
kernel, the default on CPU, and its pure-torch path). Every run sees the same
initial weights and batches, and the runs advance in lockstep (step s of every contender,
in an order that rotates, before step s + 1), so a busy machine slows them alike. Step
time is the optimizer step alone: median over steps after the first (the first, which
includes torchao's compile, is reported separately), with the 10th-90th percentile range.
Each ``--hidden`` size is one model (the first is the small default, the second ~1.4M
params); the ratio to torch AdamW on bf16 params is printed per size.

    python benchmarks/bench_optim.py [--device cpu|cuda] [--steps 300] [--hidden 1024 65536]
        [--threads N] [--skip torchao ...] [--out FILE]
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
    step_ms_p10: float | None = None
    step_ms_p90: float | None = None
    first_step_ms: float | None = None
    total_s: float | None = None  # this contender's forward, backward and optimizer
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
    Contender(
        "audiogen AdamW SR, torch ops",
        torch.bfloat16,
        lambda p, hp: AdamW(p, native=False, **hp),
    ),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class _Run:
    """One contender's model, optimizer and timings while the lockstep loop runs."""

    contender: Contender
    model: torch.nn.Module | None
    opt: torch.optim.Optimizer | None
    step_times: list[float]
    losses: list[float]
    total: float = 0.0
    error: str | None = None


def _start(c: Contender, cfg: toy.ToyRecipe, device: torch.device, hp: dict) -> _Run:
    torch.manual_seed(0)
    model = toy.build_model(cfg).to(device=device, dtype=c.param_dtype)
    try:
        opt = c.make(list(model.parameters()), hp)
    except RuntimeError as e:
        return _Run(c, model, None, [], [], error=str(e))
    return _Run(c, model, opt, [], [])


def _train_step(r: _Run, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> None:
    t_start = time.perf_counter()
    x = x.to(device, r.contender.param_dtype)
    loss = F.mse_loss(r.model(x).float(), y.to(device))
    loss.backward()
    _sync(device)
    t0 = time.perf_counter()
    try:
        r.opt.step()
    except Exception as e:  # noqa: BLE001 - e.g. torch.compile without a C++ compiler
        r.error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        return
    _sync(device)
    r.step_times.append(time.perf_counter() - t0)
    r.opt.zero_grad(set_to_none=False)  # keep grads allocated: they count as state
    r.losses.append(loss.item())
    r.total += time.perf_counter() - t_start


def _result(r: _Run, data) -> Result:
    if r.error:
        return Result(r.contender.name, error=r.error)
    params = list(r.model.parameters())
    numel = sum(p.numel() for p in params)
    state = sum(p.nbytes + (p.grad.nbytes if p.grad is not None else 0) for p in params)
    for st in r.opt.state.values():
        state += sum(v.nbytes for v in st.values() if isinstance(v, torch.Tensor))
    times = r.step_times[1:]
    deciles = statistics.quantiles(times, n=10) if len(times) > 1 else times * 9
    return Result(
        r.contender.name,
        final_loss=toy.evaluate(r.model.to("cpu"), data),
        train_loss=statistics.fmean(r.losses[-20:]),
        step_ms=1e3 * statistics.median(times),
        step_ms_p10=1e3 * deciles[0],
        step_ms_p90=1e3 * deciles[-1],
        first_step_ms=1e3 * r.step_times[0],
        total_s=r.total,
        state_bytes_per_param=state / numel,
    )


def run_size(args: argparse.Namespace, hidden: int, device: torch.device) -> tuple[int, list]:
    """Train every contender on the toy MLP of width ``hidden``, all in lockstep."""
    cfg = toy.ToyRecipe()
    cfg.model = toy.ToyModelConfig(in_dim=args.in_dim, hidden=hidden, out_dim=args.out_dim)
    data = toy.build_dataset(cfg)
    hp = dict(lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    runs = [
        _start(c, cfg, device, hp)
        if i < 2 or not any(k in c.name for k in args.skip)
        else _Run(c, None, None, [], [], error="skipped (--skip)")
        for i, c in enumerate(CONTENDERS)
    ]
    order = torch.randint(
        0, len(data), (args.steps, args.batch), generator=torch.Generator().manual_seed(1)
    )
    for s in range(args.steps):
        batch = data.get_batch(order[s].tolist())
        k = s % len(runs)
        for r in runs[k:] + runs[:k]:  # rotate who goes first (caches, frequency)
            if r.error is None:
                _train_step(r, batch.x, batch.y, device)
    results = [_result(r, data) for r in runs]
    ref, rne = results[0], results[1]
    for r in results:
        if r.final_loss is not None and ref.final_loss:
            r.loss_vs_fp32 = r.final_loss / ref.final_loss
        if r.step_ms is not None and rne.step_ms:
            r.step_vs_torch_bf16 = r.step_ms / rne.step_ms
    numel = sum(p.numel() for p in runs[0].model.parameters())
    return numel, results


def _print(args, hidden: int, numel: int, results: list[Result]) -> None:
    cols = ["eval MSE", "vs fp32", "step ms", "p10-p90 ms", "vs bf16", "1st ms", "B/param"]
    print(
        f"\ntoy MLP hidden {hidden}: {numel} params, {args.steps} steps, batch {args.batch}, "
        f"lr {args.lr}, {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'optimizer':32s} " + " ".join(f"{c:>11s}" for c in cols))
    for r in results:
        if r.error:
            print(f"{r.name:32s} unavailable: {r.error}")
            continue
        spread = f"{r.step_ms_p10:.2f}-{r.step_ms_p90:.2f}"
        print(
            f"{r.name:32s} {r.final_loss:11.4f} {r.loss_vs_fp32:11.3f} {r.step_ms:11.3f} "
            f"{spread:>11s} {r.step_vs_torch_bf16:11.2f} {r.first_step_ms:11.1f} "
            f"{r.state_bytes_per_param:11.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--in-dim", type=int, default=16)
    ap.add_argument("--hidden", type=int, nargs="+", default=[1024, 65536])
    ap.add_argument("--out-dim", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument(
        "--skip", nargs="*", default=[], help="leave out contenders whose name contains one"
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_optim.json"))
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA device is available")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = []
    for hidden in args.hidden:
        numel, results = run_size(args, hidden, device)
        _print(args, hidden, numel, results)
        sizes.append({"hidden": hidden, "params": numel, "results": [asdict(r) for r in results]})
    print("\naudiogen AdamW step time / torch AdamW bf16 step time (compiled kernel, torch ops):")
    for size in sizes:
        ours = [r for r in size["results"] if r["name"].startswith("audiogen")]
        ratios = ", ".join(f"{r['step_vs_torch_bf16'] or float('nan'):.2f}" for r in ours)
        print(f"  {size['params']:>9d} params: {ratios}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    meta.update(
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        machine=platform.processor() or platform.machine(),
    )
    args.out.write_text(json.dumps({"config": meta, "sizes": sizes}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
