"""AdamW whose update runs in fp32 and is written back to bf16 with stochastic rounding.

Pure-bf16 training keeps parameters, gradients and both Adam moments in bf16 (8 bytes of
training state per parameter, against 16 for fp32 AdamW) with no fp32 master copy. The
catch is that round-to-nearest drops any update smaller than half a bf16 ulp, so small
learning rates stall. Stochastic rounding (SR) rounds up or down with probability
proportional to the distance, so the rounded value equals the fp32 value in expectation and
small updates survive on average.

Speed without ``torch.compile``: on CPU, bf16 parameters with bf16 gradients go through a
one-pass C kernel (``audiogen/native/sr_adamw.c``, compiled on first use; see
``audiogen.native``): each element is read once, updated in fp32 and rounded, with its
random bits a hash of (step seed, element index), so results do not depend on the thread
count. Elsewhere (GPU, fp16, no C compiler) the bf16 tensors are processed in flat chunks
that stay in the CPU cache, each a handful of kernels across all parameters (upcast into a
reused fp32 workspace, torch's fused AdamW kernel, integer SR, downcast). The views that
map tensors to chunks are built once and reused while the tensors stay where they are. The
random bits of an ``R x C`` block are ``a[i] XOR b[j]`` for fresh 16-bit draws ``a`` (one
per row of every chunk) and ``b`` (one row shared by all chunks of a step): each element's
bits are uniform and any two elements' bits are independent (pairwise independence), which
is what unbiasedness and error averaging need; drawing one number per element with the CPU
generator would cost more than the whole Adam update.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import torch
from torch.optim import Optimizer

from audiogen import native

# Columns of the a[i] XOR b[j] noise grid: one row of b serves every chunk of a step, and
# with rows this long the XOR kernel runs at memory speed.
_NOISE_COLS = 1024
_BF16_MAX = torch.finfo(torch.bfloat16).max


def _draw(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """``n`` uniform 16-bit draws, int32 on ``device`` (drawn on the generator's device)."""
    gen_device = generator.device if generator is not None else device
    out = torch.empty(n, dtype=torch.int32, device=gen_device)
    out.random_(0, 1 << 16, generator=generator)
    return out.to(device)


@cache
def _kernels() -> tuple | None:
    """The compiled one-pass kernels ``(adamw_bf16, round_bf16_sr)``, or None (torch paths)."""
    adamw = native.function(
        "sr_adamw", "adamw_bf16", "i64 ptr ptr ptr ptr ptr f32 f32 f32 f32 f32 f32 f32 u32 int"
    )
    rounding = native.function("sr_adamw", "round_bf16_sr", "ptr ptr i64 u32")
    return None if adamw is None else (adamw, rounding)


def _seed(generator: torch.Generator | None) -> int:
    """A uniform 32-bit seed from ``generator`` (or torch's global RNG)."""
    hi, lo = _draw(2, generator, torch.device("cpu")).tolist()
    return (hi << 16) | lo


def _noise(n: int, *, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform 16-bit noise, pairwise independent: int32 ``[n]`` in [0, 2**16)."""
    rows = -(-n // _NOISE_COLS)
    ab = _draw(rows + _NOISE_COLS, generator, device)
    grid = torch.bitwise_xor(ab[:rows, None], ab[None, rows:])
    return grid.view(-1)[:n]


def _round_bits_(x32: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Stochastically round fp32 ``x32`` ``[..., n]`` to bf16 values, in place.

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
    kernels = _kernels() if src.device.type == "cpu" else None
    if kernels is not None:
        out = torch.empty(src.shape, dtype=torch.bfloat16)
        kernels[1](src.data_ptr(), out.data_ptr(), src.numel(), _seed(generator))
    else:
        work = src.clone().view(-1)
        _round_bits_(work, _noise(work.numel(), generator=generator, device=x.device))
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


@dataclass
class _Chunk:
    """One cache-sized chunk of a bucket: which tensor slices meet which workspace views."""

    segs: list[_Segment]
    state: list[torch.Tensor]  # bf16 slices of params, exp_avg, exp_avg_sq (in that order)
    work_state: list[torch.Tensor]  # their fp32 workspace views, same order and shapes
    work_in: list[torch.Tensor]  # work_state, then the views that receive the grad slices
    rows: tuple[torch.Tensor, ...]  # fp32 [used] each: params, grads, exp_avg, exp_avg_sq
    bits: torch.Tensor  # int32 [3, used]: params, exp_avg, exp_avg_sq rows as bit patterns
    a: torch.Tensor  # int32 [r, 1]: this chunk's row draws
    grid: torch.Tensor  # int32 [r, _NOISE_COLS]: a XOR b is written here
    noise: torch.Tensor  # int32 [used]: the grid, flat


@dataclass
class _Plan:
    """Reusable views for one bucket of low-precision params, valid while ``key`` holds."""

    key: tuple
    chunks: list[_Chunk]
    draws: torch.Tensor  # int32 [rows of all chunks + _NOISE_COLS], refilled every step
    b: torch.Tensor  # int32 [1, _NOISE_COLS]: the shared column draws
    step: torch.Tensor  # fp32 scalar on the params' device, for the fused kernel
    mask: torch.Tensor  # int32 scalar 0xFFFF0000 (a tensor: a Python int costs a conversion)


class AdamW(Optimizer):
    """AdamW (decoupled weight decay) for fp32 or bf16 parameters.

    fp32 parameters follow ``torch.optim.AdamW`` exactly (foreach ops). bf16 (or fp16)
    parameters keep bf16 moments; each step upcasts to fp32, updates, and writes parameters
    and moments back with stochastic rounding (bf16 only) or round-to-nearest when
    ``stochastic_rounding=False``. Training state for bf16 params: 8 bytes/param including
    the gradient. ``generator`` drives the rounding noise (default: torch's global RNG); give
    every data-parallel rank a generator with the same seed so replicas stay identical.
    ``chunk_size`` bounds the fp32 workspace (about 20 bytes per chunk element): small enough
    that a chunk's pipeline runs on cached data, large enough to amortise the ~6 kernel
    launches per chunk (1 << 17 measured best of 2**15..2**20 on a 1.4M-param model).
    ``native=False`` keeps CPU bf16 parameters off the compiled one-pass kernel (the chunked
    torch path instead: same update, different random bits).
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
        chunk_size: int = 1 << 17,
        native: bool = True,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError("lr, eps and weight_decay must be >= 0")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
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
        self.native = native
        self._workspace: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._plans: dict[tuple, _Plan] = {}

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch.optim.Optimizer API
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for gi, group in enumerate(self.param_groups):
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
            values = torch.stack(steps).tolist() if len(steps) > 1 else [steps[0].item()]
            # Bias corrections depend on the step, so params on different steps (one
            # without a grad for a while) are updated in separate buckets.
            buckets: dict[tuple, list[torch.Tensor]] = {}
            for p, step in zip(params, values, strict=True):
                buckets.setdefault((p.dtype, p.device, int(step)), []).append(p)
            for (dtype, device, step), bucket in buckets.items():
                if dtype in (torch.float32, torch.float64):
                    self._step_full(group, bucket, step)
                else:
                    self._step_low(gi, group, bucket, step, device)
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

    def _plan(self, gi: int, params: list[torch.Tensor], device: torch.device) -> _Plan:
        """The bucket's cached views, rebuilt when a tensor was replaced (e.g. state loaded)."""
        states = [self.state[p] for p in params]
        local = [_local(p) for p in params]
        exp_avg = [_local(s["exp_avg"]) for s in states]
        exp_avg_sq = [_local(s["exp_avg_sq"]) for s in states]
        tensors = local + exp_avg + exp_avg_sq
        key = (gi, *(t.data_ptr() for t in tensors), *(t.shape for t in local))
        ids = (gi, *map(id, params))
        plan = self._plans.get(ids)
        if plan is not None and plan.key == key:
            return plan
        if len(self._plans) > 16:  # buckets that come and go: keep the cache small
            self._plans.clear()
        numels = [t.numel() for t in local]
        chunk = min(self.chunk_size, sum(numels))
        work, grid = self._buffers(chunk, device)
        cols = _NOISE_COLS
        planned = _plan_chunks(numels, chunk)
        row_counts = [-(-used // cols) for _, used in planned]
        draws = torch.empty(sum(row_counts) + cols, dtype=torch.int32, device=device)
        bits_all = work.view(torch.int32)
        chunks, row0 = [], 0
        for (segs, used), rows in zip(planned, row_counts, strict=True):
            sizes = [s.stop - s.start for s in segs]
            # rows of the workspace: params, exp_avg, exp_avg_sq (rounded together), grads
            views = [list(work[k, :used].split(sizes)) for k in range(4)]
            state, work_state = [], []
            for k, ts in enumerate((local, exp_avg, exp_avg_sq)):
                for s, w in zip(segs, views[k], strict=True):
                    src, dst = _pair(ts[s.index], w, s)
                    state.append(src)
                    work_state.append(dst)
            pairs = zip(segs, views[3], strict=True)
            work_grad = [_pair(local[s.index], w, s)[1] for s, w in pairs]
            chunks.append(
                _Chunk(
                    segs=segs,
                    state=state,
                    work_state=work_state,
                    work_in=work_state + work_grad,
                    rows=tuple(work[k, :used] for k in (0, 3, 1, 2)),
                    bits=bits_all[:3, :used],
                    a=draws[row0 : row0 + rows, None],
                    grid=grid[: rows * cols].view(rows, cols),
                    noise=grid[:used],
                )
            )
            row0 += rows
        plan = _Plan(
            key=key,
            chunks=chunks,
            draws=draws,
            b=draws[None, row0:],
            step=torch.zeros((), dtype=torch.float32, device=device),
            mask=torch.tensor(-65536, dtype=torch.int32, device=device),
        )
        self._plans[ids] = plan
        return plan

    def _buffers(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The reused workspace: fp32 ``[4, n]`` (p, m, v, g) and the int32 noise grid."""
        have = self._workspace.get(device)
        if have is None or have[0].shape[1] < n:
            # plans hold views of the old workspace: rebuild them on the new one
            self._plans = {k: v for k, v in self._plans.items() if v.step.device != device}
            rows = -(-n // _NOISE_COLS)
            self._workspace[device] = (
                torch.empty(4, n, dtype=torch.float32, device=device),
                torch.empty(rows * _NOISE_COLS, dtype=torch.int32, device=device),
            )
        return self._workspace[device]

    def _step_low(self, gi: int, group: dict, params: list[torch.Tensor], step: int, device):
        """fp32 update of low-precision params in flat chunks; SR or RNE write-back."""
        if self._step_native(group, params, step, device):
            return
        plan = self._plan(gi, params, device)
        grads = [_local(p.grad) for p in params]
        lr, (beta1, beta2), eps, wd = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        use_sr = group["stochastic_rounding"] and params[0].dtype == torch.bfloat16
        if use_sr:
            gen = self.generator
            if gen is None or gen.device == plan.draws.device:
                plan.draws.random_(0, 1 << 16, generator=gen)
            else:
                plan.draws.copy_(_draw(plan.draws.numel(), gen, gen.device))
        plan.step.fill_(float(step))
        step_t = [plan.step]
        for ck in plan.chunks:
            gs = [_grad_slice(grads[s.index], s) for s in ck.segs]
            torch._foreach_copy_(ck.work_in, ck.state + gs)
            wp, wg, wm, wv = ck.rows
            # torch's own fused AdamW kernel: the same formula as torch.optim.AdamW in one
            # pass over the chunk while it is in cache
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
            if use_sr:
                # One noise row serves p, m and v: each is still rounded without bias, and
                # nothing needs their rounding errors to be independent of one another.
                torch.bitwise_xor(ck.a, plan.b, out=ck.grid)
                ck.bits.add_(ck.noise).bitwise_and_(plan.mask)
            torch._foreach_copy_(ck.state, ck.work_state)

    def _step_native(self, group: dict, params: list[torch.Tensor], step: int, device) -> bool:
        """The one-pass C kernel for contiguous bf16 CPU tensors; False if it does not apply."""
        if not self.native or device.type != "cpu" or params[0].dtype != torch.bfloat16:
            return False
        p, g, m, v = self._tensors(params)
        tensors = (p, g, m, v)
        if any(t.dtype != torch.bfloat16 or not t.is_contiguous() for ts in tensors for t in ts):
            return False
        kernels = _kernels()
        if kernels is None:
            return False
        tables = [torch.tensor([t.data_ptr() for t in ts], dtype=torch.int64) for ts in tensors]
        numel = torch.tensor([t.numel() for t in p], dtype=torch.int64)
        lr, (beta1, beta2) = group["lr"], group["betas"]
        use_sr = bool(group["stochastic_rounding"])
        kernels[0](
            len(p),
            numel.data_ptr(),
            *(t.data_ptr() for t in tables),
            lr,
            beta1,
            beta2,
            group["eps"],
            group["weight_decay"],
            lr / (1 - beta1**step),
            math.sqrt(1 - beta2**step),
            _seed(self.generator) if use_sr else 0,
            int(use_sr),
        )
        return True


def _pair(t: torch.Tensor, w: torch.Tensor, seg: _Segment) -> tuple[torch.Tensor, torch.Tensor]:
    """``t``'s part in ``seg`` and its workspace view ``w``: whole tensors keep their shape."""
    if seg.start == 0 and seg.stop == t.numel():
        return t, w.view(t.shape)
    # view(-1) fails on a non-contiguous tensor, which a slice could not update in place
    return t.view(-1)[seg.start : seg.stop], w


def _grad_slice(g: torch.Tensor, seg: _Segment) -> torch.Tensor:
    """The gradient's part in ``seg``, shaped like its workspace view."""
    if seg.start == 0 and seg.stop == g.numel():
        return g
    return g.reshape(-1)[seg.start : seg.stop]


def _local(t: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor (FSDP2), or the tensor itself; updates act in place."""
    to_local = getattr(t, "to_local", None)
    return to_local() if to_local is not None else t
