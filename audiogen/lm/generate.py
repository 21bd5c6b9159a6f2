"""Autoregressive generation with a preallocated KV cache and classifier-free guidance.

One step feeds the newest pattern position for the cond and null branches together (a
doubled batch ``[cond; null]``), mixes the logits as ``uncond + (cond - uncond) * cfg_coef``
and picks the next token per codebook. With a third, partial branch (the conditions minus
one of them, e.g. the caption without its melody) the batch is tripled and the two
differences get scales of their own: ``uncond + (partial - uncond) * cfg_coef + (cond -
partial) * partial_coef`` (InstructPix2Pix's two guidance scales; equal scales give plain
CFG). More partial branches, each holding less than the one before, extend the chain (e.g.
caption + clock + melody, caption + clock, caption, null: one scale per added condition).
Cross-attention K/V are computed once; the self-attention cache is written in place.
Prompt codes are laid on the pattern and kept where known (continuation); prompts of
different lengths in one batch are left-aligned (each row's prompt starts at frame 0, a
shorter prompt simply leaves more frames to generate), so one cache serves them all. Beyond
``window`` frames, generation slides MusicGen's way: the last ``window - extend_stride``
frames become the prompt of the next window.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .fused import FusedDecoder
from .model import MusicLM
from .sampling import SamplingParams, select_next
from .transformer import KVCache

ProgressFn = Callable[[int, int], None]


@dataclass
class Conditions:
    """Condition tensors at the LM width.

    cross: ``[B, Sc, D]`` cross-attention source; cross_mask: ``[B, Sc]`` bool (True = valid).
    prefix: ``[B, P, D]`` embeddings prepended to the sequence (MusicGen-melody).
    frame: ``[B, F, D]`` embeddings added to the inputs frame by frame (the ``sum`` fuse):
    sequence position ``s`` gets ``frame[:, s]``, the condition of the frame whose first
    codebook it predicts; positions past ``F`` get nothing.
    """

    cross: torch.Tensor | None = None
    cross_mask: torch.Tensor | None = None
    prefix: torch.Tensor | None = None
    frame: torch.Tensor | None = None

    @property
    def batch_size(self) -> int | None:
        for t in (self.cross, self.prefix, self.frame):
            if t is not None:
                return t.shape[0]
        return None

    def null(self) -> Conditions:
        """The null condition HF MusicGen uses for CFG: zero embeddings, nothing valid."""
        cross = None if self.cross is None else torch.zeros_like(self.cross)
        mask = None
        if self.cross is not None:
            mask = torch.zeros(self.cross.shape[:2], dtype=torch.bool, device=self.cross.device)
        prefix = None if self.prefix is None else torch.zeros_like(self.prefix)
        frame = None if self.frame is None else torch.zeros_like(self.frame)
        return Conditions(cross=cross, cross_mask=mask, prefix=prefix, frame=frame)

    def from_frame(self, offset: int) -> Conditions:
        """The same conditions for a window that starts at frame ``offset``."""
        if self.frame is None or offset == 0:
            return self
        return dataclasses.replace(self, frame=self.frame[:, offset:])


@dataclass
class GenerationOutput:
    """codes: ``[B, K, F]`` int64 (prompt frames included). prompt_frames: how many of F
    came from the prompt (the longest prompt's when they differ; prompt_lengths then gives
    each row's). logits: ``[B, K, steps, card]`` CFG-mixed logits of every step of
    the last window when requested. steps: decode steps run; seconds: wall time."""

    codes: torch.Tensor
    prompt_frames: int = 0
    prompt_lengths: list[int] | None = None
    steps: int = 0
    seconds: float = 0.0
    logits: torch.Tensor | None = None
    windows: list[int] = field(default_factory=list)


def _pad_cross(t: torch.Tensor, m: torch.Tensor | None, length: int) -> tuple:
    if m is None:
        m = torch.ones(t.shape[:2], dtype=torch.bool, device=t.device)
    pad = length - t.shape[1]
    if pad:
        t = F.pad(t, (0, 0, 0, pad))
        m = F.pad(m.bool(), (0, pad), value=False)
    return t, m.bool()


def _merge(branches: list[Conditions]) -> Conditions:
    """Stack the CFG branches (``[cond; null]`` or ``[cond; partial; null]``) along the batch,
    padding cross sources to one length."""
    if len(branches) == 1:
        return branches[0]
    kinds = [tuple(getattr(c, k) is None for k in ("cross", "prefix", "frame")) for c in branches]
    if len(set(kinds)) != 1:
        raise ValueError("cond, partial_cond and null_cond must carry the same kinds of tensors")
    first = branches[0]
    cross = mask = prefix = frame = None
    if first.cross is not None:
        length = max(c.cross.shape[1] for c in branches)
        padded = [_pad_cross(c.cross, c.cross_mask, length) for c in branches]
        cross = torch.cat([t for t, _ in padded])
        mask = torch.cat([m for _, m in padded])
    if first.prefix is not None:
        if len({c.prefix.shape[1] for c in branches}) != 1:
            raise ValueError("the CFG branches' prefixes must have the same length")
        prefix = torch.cat([c.prefix for c in branches])
    if first.frame is not None:
        length = max(c.frame.shape[1] for c in branches)
        frame = torch.cat([MusicLM.frame_inputs(c.frame, 0, length) for c in branches])
    return Conditions(cross=cross, cross_mask=mask, prefix=prefix, frame=frame)


class _Progress:
    def __init__(self, progress: bool | ProgressFn, total: int) -> None:
        self.fn: ProgressFn | None = None
        self.bar = None
        if callable(progress):
            self.fn = progress
        elif progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="step", leave=False)
        self.total = total
        self.done = 0

    def update(self) -> None:
        self.done += 1
        if self.fn is not None:
            self.fn(self.done, self.total)
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _guide(branch_logits: tuple[torch.Tensor, ...], coefs: tuple[float, ...]) -> torch.Tensor:
    """Mix the branches' logits (most conditioned first, null last): ``null + sum_i
    coefs[-1-i] * (branch_i - branch_{i+1})``, i.e. ``uncond + (cond - uncond) * cfg_coef``
    for two branches."""
    out = branch_logits[-1]
    for i, coef in enumerate(coefs):  # coefs: outermost (null -> partial) first
        lo, hi = branch_logits[-1 - i], branch_logits[-2 - i]
        out = out + (hi - lo) * coef
    return out


@torch.inference_mode()
def _generate_window(
    lm: MusicLM,
    *,
    conds: Conditions,
    coefs: tuple[float, ...],
    batch: int,
    prompt: torch.Tensor | None,
    num_frames: int,
    params: SamplingParams,
    prompt_lengths: torch.Tensor | None = None,
    generator: torch.Generator | None,
    progress: _Progress | None,
    keep_logits: bool,
) -> tuple[torch.Tensor, int, torch.Tensor | None]:
    """Generate one window of ``num_frames`` frames. Returns codes ``[B, K, F]``, steps, logits."""
    cfg = lm.config
    pattern = cfg.pattern()
    device = lm.out_norm.weight.device
    dtype = lm.compute_dtype
    known = torch.full((batch, cfg.num_codebooks, num_frames), -1, dtype=torch.long, device=device)
    if prompt is not None:
        fp = prompt.shape[-1]
        if prompt_lengths is None:
            known[..., :fp] = prompt
        else:  # left-aligned: row b knows its first prompt_lengths[b] frames
            valid = torch.arange(fp, device=device) < prompt_lengths.to(device)[:, None]
            known[..., :fp] = torch.where(valid[:, None], prompt, -1)
    seq = pattern.build(known, special_token=cfg.special_token).seq  # [B, K, S], -1 = to do
    s = seq.shape[-1]
    todo = (seq == -1).flatten(0, 1).any(dim=0).nonzero()
    t0 = int(todo[0]) if len(todo) else s
    rows = (len(coefs) + 1) * batch if coefs else batch

    prefix = conds.prefix.to(dtype) if conds.prefix is not None else None
    p = 0 if prefix is None else prefix.shape[1]
    cross = conds.cross.to(dtype) if conds.cross is not None else None
    cross_kv = lm.cross_kv(cross, conds.cross_mask)
    frame = conds.frame.to(dtype) if conds.frame is not None else None
    cache = KVCache(
        num_layers=cfg.num_layers,
        batch=rows,
        num_heads=cfg.num_heads,
        head_dim=cfg.dim // cfg.num_heads,
        max_len=p + s,
        dtype=dtype,
        device=device,
    )
    fused = FusedDecoder.build(lm, cache, cross_kv, rows)

    def run(tokens: torch.Tensor, start: int, pre: torch.Tensor | None) -> torch.Tensor:
        x = lm.embed_codes(tokens)
        if rows != batch:
            x = x.repeat(rows // batch, 1, 1)  # same tokens for every CFG branch
        if frame is not None:  # sequence position start - p onwards
            x = x + lm.frame_inputs(frame, start - p if pre is None else 0, x.shape[1])
        if pre is not None:
            x = torch.cat([pre, x], dim=1)
        h = lm.backbone(x, start=start, cache=cache, cross_kv=cross_kv, fused=fused)
        logits = lm.head(h[:, -1:])[:, :, 0].float()  # [rows, K, card]
        if rows != batch:
            return _guide(logits.split(batch), coefs)
        return logits

    logits = run(seq[:, :, :t0], 0, prefix)
    kept = []
    steps = 0
    for t in range(t0, s):
        if keep_logits:
            kept.append(logits)
        nxt = select_next(logits, params=params, generator=generator)  # [B, K]
        cur = seq[:, :, t]
        seq[:, :, t] = torch.where(cur == -1, nxt, cur)
        steps += 1
        if progress is not None:
            progress.update()
        if t + 1 < s:
            logits = run(seq[:, :, t : t + 1], p + t, None)
    out_logits = torch.stack(kept, dim=2) if keep_logits and kept else None
    return pattern.revert(seq), steps, out_logits


def generate(
    lm: MusicLM,
    *,
    num_frames: int,
    cond: Conditions | None = None,
    null_cond: Conditions | None = None,
    cfg_coef: float = 3.0,
    partial_cond: Conditions | Sequence[Conditions] | None = None,
    partial_coef: float | Sequence[float] | None = None,
    prompt: torch.Tensor | None = None,
    prompt_lengths: torch.Tensor | list[int] | None = None,
    batch_size: int | None = None,
    params: SamplingParams | None = None,
    generator: torch.Generator | None = None,
    window: int | None = None,
    extend_stride: int | None = None,
    progress: bool | ProgressFn = False,
    return_logits: bool = False,
) -> GenerationOutput:
    """Generate codes ``[B, K, num_frames]`` (prompt frames included) from conditions.

    cond / null_cond: condition tensors for the two CFG branches; with cond given and
    ``cfg_coef != 1`` a missing null_cond defaults to ``cond.null()`` (zeros, fully masked).
    partial_cond / partial_coef: a third branch holding part of cond (e.g. the caption with
    the melody nulled); the logits become ``uncond + (partial - uncond) * cfg_coef + (cond -
    partial) * partial_coef``, so partial_coef scales what cond adds to partial (the melody)
    and cfg_coef the rest. Needs cfg; partial_coef == cfg_coef is plain CFG with 1.5x the rows.
    prompt: ``[B, K, Fp]`` codes to continue. prompt_lengths: ``[B]`` frames of each row's
    prompt when they differ (left-aligned: row b continues ``prompt[b, :, :len_b]``; the
    rest of the row is padding and ignored); every row still gets num_frames. window: most
    frames per pass (the context the LM was trained on, e.g. 1500 = 30 s at 50 Hz); longer
    outputs slide by extend_stride frames (default ``window // 2``). progress: True for a
    tqdm bar or a ``fn(done, total)``.
    """
    params = params or SamplingParams()
    cond = cond or Conditions()
    b = batch_size or cond.batch_size or (prompt.shape[0] if prompt is not None else 1)
    if cond.batch_size not in (None, b) or (prompt is not None and prompt.shape[0] != b):
        raise ValueError(f"batch sizes disagree (batch_size={b})")
    use_cfg = cfg_coef != 1.0 and cond.batch_size is not None
    if use_cfg and null_cond is None:
        null_cond = cond.null()
    if (partial_cond is None) != (partial_coef is None):
        raise ValueError("partial_cond and partial_coef go together")
    partials = [partial_cond] if isinstance(partial_cond, Conditions) else list(partial_cond or [])
    partial_coefs = (
        [partial_coef] if isinstance(partial_coef, numbers.Real) else list(partial_coef or [])
    )
    if len(partials) != len(partial_coefs):
        raise ValueError(f"{len(partials)} partial_cond branches but {len(partial_coefs)} coefs")
    if partials and not use_cfg:
        raise ValueError("partial_cond needs classifier-free guidance (cfg_coef != 1)")
    if any(pc.batch_size != cond.batch_size for pc in partials):
        raise ValueError("partial_cond and cond batch sizes disagree")
    if not use_cfg:
        branches, coefs = [cond], ()
    else:  # coefs from the null branch outwards
        branches = [cond, *partials, null_cond]
        coefs = (cfg_coef, *(float(c) for c in reversed(partial_coefs)))
    conds = _merge(branches)
    fp = 0 if prompt is None else prompt.shape[-1]
    lengths = None
    if prompt_lengths is not None:
        if prompt is None:
            raise ValueError("prompt_lengths given without a prompt")
        lengths = torch.as_tensor(prompt_lengths, dtype=torch.long).cpu()
        if lengths.shape != (b,) or int(lengths.min()) < 0 or int(lengths.max()) > fp:
            raise ValueError(f"prompt_lengths must be {b} values in [0, {fp}]")
    if fp > num_frames:
        raise ValueError(f"prompt has {fp} frames, more than num_frames={num_frames}")
    window = window or num_frames
    stride = extend_stride or max(1, window // 2)
    if not 0 < stride <= window:
        raise ValueError(f"extend_stride must be in (0, window], got {stride}")
    if fp >= window and num_frames > fp:
        raise ValueError(f"prompt ({fp} frames) must be shorter than the window ({window})")

    fmin = fp if lengths is None else int(lengths.min())
    total_steps = _count_steps(lm, num_frames, fmin, window, stride)
    bar = _Progress(progress, total_steps)
    start = time.perf_counter()
    kw = dict(
        conds=conds,
        coefs=coefs,
        batch=b,
        params=params,
        generator=generator,
        progress=bar,
        keep_logits=return_logits,
    )
    codes, steps, logits = _generate_window(
        lm, prompt=prompt, num_frames=min(window, num_frames), prompt_lengths=lengths, **kw
    )
    windows = [codes.shape[-1]]
    while codes.shape[-1] < num_frames:
        keep = window - stride
        ctx = codes[..., codes.shape[-1] - keep :]
        n = min(window, keep + num_frames - codes.shape[-1])
        kw["conds"] = conds.from_frame(codes.shape[-1] - keep)
        new, more, logits = _generate_window(lm, prompt=ctx, num_frames=n, **kw)
        codes = torch.cat([codes, new[..., keep:]], dim=-1)
        steps += more
        windows.append(n)
    bar.close()
    return GenerationOutput(
        codes=codes,
        prompt_frames=fp,
        prompt_lengths=None if lengths is None else lengths.tolist(),
        steps=steps,
        seconds=time.perf_counter() - start,
        logits=logits,
        windows=windows,
    )


def _count_steps(lm: MusicLM, num_frames: int, fp: int, window: int, stride: int) -> int:
    """Decode steps the windows will take (for the progress bar)."""
    pattern = lm.config.pattern()
    first = min(window, num_frames)
    steps = pattern.seq_len(first) - (fp + min(pattern.delays) + 1)
    done = first
    keep = window - stride
    while done < num_frames:
        n = min(window, keep + num_frames - done)
        steps += pattern.seq_len(n) - (keep + min(pattern.delays) + 1)
        done += n - keep
    return steps
