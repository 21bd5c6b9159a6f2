"""AdamW whose update runs in fp32 and is written back to bf16 with stochastic rounding.

Pure-bf16 training keeps parameters, gradients and both Adam moments in bf16 (8 bytes of
training state per parameter, against 16 for fp32 AdamW) with no fp32 master copy. The
catch is that round-to-nearest drops any update smaller than half a bf16 ulp, so small
learning rates stall. Stochastic rounding (SR) rounds up or down with probability
proportional to the distance, so the rounded value equals the fp32 value in expectation and
small updates survive on average.

Speed without ``torch.compile``: the bf16 parameters are processed in fixed-size flat chunks
of a reused fp32 workspace (one kernel per operation per chunk, across all parameters), and
the random bits for a chunk of ``R x C`` elements are ``a[i] XOR b[j]`` for ``R + C`` fresh
16-bit draws. Each element's bits are uniform and any two elements' bits are independent
(pairwise independence), which is what unbiasedness and error averaging need; drawing one
number per element with the CPU generator would cost more than the whole Adam update.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch.optim import Optimizer

# Columns of the a[i] XOR b[j] noise grid; long rows keep the broadcast kernel vectorised.
_NOISE_COLS = 4096
_BF16_MAX = torch.finfo(torch.bfloat16).max


def _noise(
    k: int,
    n: int,
    *,
    generator: torch.Generator | None,
    out: torch.Tensor | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Uniform 16-bit noise, pairwise independent: int32 ``[k, n]`` in [0, 2**16).

    ``out`` (int32, at least ``k * rows * _NOISE_COLS`` elements) avoids a fresh allocation.
    """
    rows = -(-n // _NOISE_COLS)
    device = out.device if out is not None else device
    gen_device = generator.device if generator is not None else device
    draw = dict(dtype=torch.int32, generator=generator, device=gen_device)
    a = torch.randint(0, 1 << 16, (k, rows, 1), **draw).to(device)
    b = torch.randint(0, 1 << 16, (k, 1, _NOISE_COLS), **draw).to(device)
    if out is None:
        grid = torch.bitwise_xor(a, b)
    else:
        grid = torch.bitwise_xor(a, b, out=out.view(-1)[: k * rows * _NOISE_COLS].view(k, rows, -1))
    return grid.view(k, -1)[:, :n]


def _round_bits_(x32: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Stochastically round contiguous fp32 ``x32`` ``[n]`` to bf16 values, in place.

    Adds int32 ``noise`` ``[n]`` in [0, 2**16) to the fp32 bit pattern: the carry out of the
    low 16 bits rounds the magnitude up with probability (low bits) / 2**16 (the same for
    both signs, the pattern being sign-magnitude); clearing the low bits then truncates. The
    result is exactly representable in bf16, so a later ``.to(bfloat16)`` is exact.
    """
    bits = x32.view(torch.int32)
    bits.add_(noise).bitwise_and_(-65536)
    return x32


def stochastic_round(
    x: torch.Tensor, dtype: torch.dtype = torch.bfloat16, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Round ``x`` (any shape, fp32) to bf16, up or down with probability given by distance.

    Unbiased: E[result] == x for every finite x within bf16 range, and the result is always
    one of the two bf16 neighbours of x (x itself when exactly representable). NaN stays NaN,
    ±inf stays ±inf, and a finite value never rounds to inf: beyond the largest bf16 value
    the result saturates at ±max (no neighbour exists there to be unbiased about).
    The random bits of different elements are pairwise independent (see the module doc),
    so errors average out over sums as with fully independent draws.
    """
    if dtype != torch.bfloat16:
        raise ValueError(f"stochastic_round supports bfloat16 only, got {dtype}")
    src = x.detach().to(torch.float32).contiguous()
    work = src.clone().view(-1)
    _round_bits_(work, _noise(1, work.numel(), generator=generator, device=x.device)[0])
    out = work.view(x.shape).to(torch.bfloat16)
    finite = torch.isfinite(src)
    saturated = out.clamp(-_BF16_MAX, _BF16_MAX)
    out = torch.where(finite, saturated, src.to(torch.bfloat16))
    return out


@dataclass
class _Segment:
    """A slice [start, stop) of parameter ``index`` (flattened) placed at ``offset`` of a chunk."""

    index: int
    start: int
    stop: int
    offset: int


def _plan_chunks(numels: list[int], chunk: int) -> list[tuple[list[_Segment], int]]:
    """Cut the concatenation of flattened tensors into chunks of at most ``chunk`` elements."""
    chunks: list[tuple[list[_Segment], int]] = []
    segs: list[_Segment] = []
    used = 0
    for i, n in enumerate(numels):
        start = 0
        while start < n:
            take = min(n - start, chunk - used)
            segs.append(_Segment(i, start, start + take, used))
            start += take
            used += take
            if used == chunk:
                chunks.append((segs, used))
                segs, used = [], 0
    if segs:
        chunks.append((segs, used))
    return chunks


class AdamW(Optimizer):
    """AdamW (decoupled weight decay) for fp32 or bf16 parameters.

    fp32 parameters follow ``torch.optim.AdamW`` exactly (foreach ops). bf16 (or fp16)
    parameters keep bf16 moments; each step upcasts to fp32, updates, and writes parameters
    and moments back with stochastic rounding (bf16 only) or round-to-nearest when
    ``stochastic_rounding=False``. Training state for bf16 params: 8 bytes/param including
    the gradient. ``generator`` drives the rounding noise (default: torch's global RNG); give
    every data-parallel rank a generator with the same seed so replicas stay identical.
    ``chunk_size`` bounds the fp32 workspace (about 32 bytes per chunk element).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        stochastic_rounding: bool = True,
        *,
        generator: torch.Generator | None = None,
        chunk_size: int = 1 << 18,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError("lr, eps and weight_decay must be >= 0")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            stochastic_rounding=stochastic_rounding,
        )
        super().__init__(params, defaults)
        self.generator = generator
        self.chunk_size = chunk_size
        self._workspace: dict[tuple, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch.optim.Optimizer API
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if p.grad.is_sparse:
                    raise RuntimeError("AdamW does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            steps = [self.state[p]["step"] for p in params]
            torch._foreach_add_(steps, 1.0)
            # Bias corrections depend on the step, so params on different steps (one
            # without a grad for a while) are updated in separate buckets.
            buckets: dict[tuple, list[torch.Tensor]] = {}
            for p, step in zip(params, torch.stack(steps).tolist(), strict=True):
                buckets.setdefault((p.dtype, p.device, int(step)), []).append(p)
            for (dtype, device, step), bucket in buckets.items():
                if dtype in (torch.float32, torch.float64):
                    self._step_full(group, bucket, step)
                else:
                    self._step_low(group, bucket, step, device)
        return loss

    def _tensors(self, params: list[torch.Tensor]):
        local = [_local(p) for p in params]
        grads = [_local(p.grad) for p in params]
        exp_avg = [_local(self.state[p]["exp_avg"]) for p in params]
        exp_avg_sq = [_local(self.state[p]["exp_avg_sq"]) for p in params]
        return local, grads, exp_avg, exp_avg_sq

    def _step_full(self, group: dict, params: list[torch.Tensor], step: int) -> None:
        """Same arithmetic as torch.optim.AdamW, with foreach ops over the bucket."""
        p, g, m, v = self._tensors(params)
        lr, (beta1, beta2), eps, wd = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        if wd != 0:
            torch._foreach_mul_(p, 1 - lr * wd)
        torch._foreach_lerp_(m, g, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, g, g, 1 - beta2)
        step_size = lr / (1 - beta1**step)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, math.sqrt(1 - beta2**step))
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(p, m, denom, -step_size)

    def _buffers(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The reused workspace: fp32 ``[4, n]`` (p, g, m, v) and int32 noise."""
        key = (device, n)
        if key not in self._workspace:
            rows = -(-n // _NOISE_COLS)
            self._workspace = {
                key: (
                    torch.empty(4, n, dtype=torch.float32, device=device),
                    torch.empty(rows * _NOISE_COLS, dtype=torch.int32, device=device),
                )
            }
        return self._workspace[key]

    def _step_low(self, group: dict, params: list[torch.Tensor], step: int, device) -> None:
        """fp32 update of low-precision params in flat chunks; SR or RNE write-back."""
        # view(-1) fails on non-contiguous tensors, which the flat chunks could not update
        flats = [[t.view(-1) for t in ts] for ts in self._tensors(params)]
        numels = [f.numel() for f in flats[0]]
        chunk = min(self.chunk_size, sum(numels))
        work, noise_buf = self._buffers(chunk, device)
        lr, (beta1, beta2), eps, wd = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        use_sr = group["stochastic_rounding"] and params[0].dtype == torch.bfloat16
        # The fp32 arithmetic on each chunk is torch's own fused AdamW kernel: the same
        # formula as torch.optim.AdamW in one pass (element-wise sqrt alone measured ~15x
        # slower than the whole fused kernel on this CPU).
        step_t = [torch.tensor(float(step), device=device)]
        for segs, used in _plan_chunks(numels, chunk):
            wp, wg, wm, wv = (work[k, :used] for k in range(4))
            srcs = [[_slice(f[s.index], s) for s in segs] for f in flats]
            sizes = [s.stop - s.start for s in segs]
            dsts = [list(w.split(sizes)) for w in (wp, wg, wm, wv)]
            torch._foreach_copy_(sum(dsts, []), sum(srcs, []))
            torch._fused_adamw_(
                [wp],
                [wg],
                [wm],
                [wv],
                [],
                step_t,
                amsgrad=False,
                lr=lr,
                beta1=beta1,
                beta2=beta2,
                weight_decay=wd,
                eps=eps,
                maximize=False,
            )
            out_idx = (0, 2, 3)  # params, exp_avg, exp_avg_sq: the grad is not written back
            if use_sr:
                # One noise row serves p, m and v: each is still rounded without bias, and
                # nothing needs their rounding errors to be independent of one another.
                noise = _noise(1, used, generator=self.generator, out=noise_buf)[0]
                for w in (wp, wm, wv):
                    _round_bits_(w, noise)
            torch._foreach_copy_(
                sum([srcs[k] for k in out_idx], []), sum([dsts[k] for k in out_idx], [])
            )


def _slice(flat: torch.Tensor, seg: _Segment) -> torch.Tensor:
    """The segment's part of a flat tensor (the tensor itself when whole: fewer views)."""
    if seg.start == 0 and seg.stop == flat.numel():
        return flat
    return flat[seg.start : seg.stop]


def _local(t: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor (FSDP2), or the tensor itself; updates act in place."""
    to_local = getattr(t, "to_local", None)
    return to_local() if to_local is not None else t
