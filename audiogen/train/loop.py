"""The shared training loop: a task's step function plugs in, everything else lives here.

Per step: read this rank's batch, run the task's step under the precision policy, skip the
step if the loss is non-finite on any rank, else backward, clip, AdamW, LR schedule. Rank 0
logs and writes checkpoints; ``resume=True`` continues bit-exactly from the latest one
(model, optimizer, scheduler, data position and every rank's RNG states are restored).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from audiogen.errors import UserError
from audiogen.train import checkpoint as ckpt
from audiogen.train import distributed as D
from audiogen.train.data import ShardedBatches
from audiogen.train.logger import NonFiniteGuard, TrainLogger
from audiogen.train.optim import AdamW
from audiogen.train.precision import resolve_precision
from audiogen.train.recipes import format_recipe, to_dict
from audiogen.train.tasks import Critic, Task


@dataclass
class TrainResult:
    """Where a finished run stands."""

    step: int
    loss: float  # last finite training loss seen on rank 0
    checkpoint: Path | None  # the final checkpoint (rank 0)
    nonfinite_steps: int
    model: torch.nn.Module  # the trained (possibly wrapped) model


def lr_factor(step: int, *, warmup: int, total: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the base LR at ``step``: linear warmup, then constant or cosine decay."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def capture_rng(device: torch.device) -> dict[str, Any]:
    """This process's python / numpy / torch (and CUDA) RNG states."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            "key": np_state["state"]["key"].tolist(),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np.array(n["key"], dtype=np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _adamw(params, oc: Any, generator: torch.Generator) -> AdamW:
    return AdamW(
        params,
        lr=oc.lr,
        betas=tuple(oc.betas),
        eps=oc.eps,
        weight_decay=oc.weight_decay,
        stochastic_rounding=oc.stochastic_rounding,
        generator=generator,
    )


def _schedule(oc: Any, total: int) -> Any:
    def schedule(s: int) -> float:
        return lr_factor(
            s, warmup=oc.warmup_steps, total=total, schedule=oc.schedule, min_ratio=oc.min_lr_ratio
        )

    return schedule


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensor fields of a dataclass batch (or a tensor) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if dataclasses.is_dataclass(batch):
        return dataclasses.replace(
            batch,
            **{
                f.name: _to_device(getattr(batch, f.name), device)
                for f in dataclasses.fields(batch)
            },
        )
    return batch


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def train(task: Task, recipe: Any, *, out_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train ``task`` with ``recipe`` (its ``recipe_cls``), writing under ``out_dir``.

    Works unchanged under ``torchrun`` (DDP or FSDP2 per ``train.parallel``). A fresh run
    refuses an ``out_dir`` that already has checkpoints; pass ``resume=True`` to continue.
    """
    env = D.init_distributed(recipe.train.device)
    try:
        return _train(task, recipe, Path(out_dir), resume, env)
    finally:
        D.shutdown(env)


def init_from(model: nn.Module, path: str | os.PathLike, *, skip: Sequence[str] = ()) -> None:
    """Load the weights of a model directory or checkpoint (``model.safetensors``) into a
    freshly built model, for fine-tuning. Names under a ``skip`` prefix keep their fresh
    init; frozen weights may be absent; anything else missing, extra or of another shape
    is a UserError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    file = p / ckpt.MODEL if p.is_dir() else p
    if not file.is_file():
        raise UserError(f"train.init: {file} not found (give a model directory or checkpoint)")
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"train.init: cannot read {file} ({e})") from None
    skipped = lambda k: any(k.startswith(s) for s in skip)  # noqa: E731
    own = model.state_dict()
    frozen = D.frozen_parameters(model)
    missing = sorted(k for k in own if k not in state and k not in frozen and not skipped(k))
    unexpected = sorted(k for k in state if k not in own)
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in state
        if k in own and not skipped(k) and state[k].shape != own[k].shape
    )
    if missing or unexpected or shapes:
        raise UserError(
            f"train.init: {file} does not fit this model's recipe (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, other shapes {shapes[:3]})"
        )
    model.load_state_dict({k: v for k, v in state.items() if not skipped(k)}, strict=False)


def _train(task: Task, recipe: Any, out_dir: Path, resume: bool, env: D.DistEnv) -> TrainResult:
    tc, oc = recipe.train, recipe.optim
    precision = resolve_precision(tc.precision, env.device)
    if not resume and ckpt.list_checkpoints(out_dir):
        raise UserError(f"{out_dir} already has checkpoints; pass --resume or choose another --out")
    if tc.batch_size % env.world_size:
        raise UserError(
            f"train.batch_size {tc.batch_size} is not divisible by {env.world_size} ranks"
        )

    _seed_all(tc.seed)  # the same on every rank: identical initial weights
    model = task.build_model(recipe)
    if tc.init and not resume:
        init_from(model, tc.init, skip=tc.init_skip)
    model = model.to(device=env.device, dtype=precision.param_dtype)
    model = D.wrap_model(model, env, tc.parallel)
    # SR noise has its own generator: seeded alike on all DDP ranks so replicas stay
    # identical; per rank under FSDP, where each rank rounds a different shard.
    sr_seed = tc.seed + 1 + (env.rank if env.distributed and tc.parallel == "fsdp" else 0)
    sr_generator = torch.Generator(device=env.device).manual_seed(sr_seed)
    optimizer = _adamw(model.parameters(), oc, sr_generator)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(oc, tc.steps))
    critic, critic_schedule = None, None
    if task.build_critic is not None:
        if env.distributed:
            raise UserError(f"the {task.name} task trains on one process (no torchrun) for now")
        if precision.grad_scaler() is not None:
            raise UserError(f"the {task.name} task does not support fp16-autocast; use bf16")
        critic_module, critic_oc = task.build_critic(recipe)
        critic_module = critic_module.to(device=env.device, dtype=precision.param_dtype)
        critic = Critic(critic_module, _adamw(critic_module.parameters(), critic_oc, sr_generator))
        # The critic's LR is set from the step count (it may not update during a warm-up).
        critic_schedule = _schedule(critic_oc, tc.steps)
        critic_lr = critic_oc.lr
    dataset = task.build_dataset(recipe)
    try:
        batches = ShardedBatches(
            num_items=len(dataset),
            global_batch=tc.batch_size,
            rank=env.rank,
            world_size=env.world_size,
            seed=tc.seed,
        )
    except ValueError as e:  # dataset smaller than one global batch
        raise UserError(f"train.batch_size: {e}") from None
    meta = task.checkpoint_meta
    config = {**(meta(recipe) if callable(meta) else meta), **to_dict(recipe)}
    step, last_ckpt, nonfinite_total = 0, None, 0
    if resume:
        loaded = ckpt.load_checkpoint(out_dir)
        step, nonfinite_total = _restore(
            loaded, model, optimizer, scheduler, batches, sr_generator, env, config
        )
        if critic is not None:
            _restore_critic(loaded, critic)
        last_ckpt = str(loaded.path)
    else:
        torch.manual_seed(tc.seed + env.rank)  # per-rank randomness from here (dropout, ...)

    logger = TrainLogger(
        out_dir,
        enabled=env.is_main,
        total_steps=tc.steps,
        start_step=step,
        tensorboard=tc.tensorboard,
        progress=tc.progress,
    )
    logger.print(
        f"# resolved recipe ({task.name}, {env.world_size} rank(s), {env.device})\n"
        + format_recipe(recipe)
    )
    if resume:
        logger.print(f"resuming from {last_ckpt} at step {step}")
    guard = NonFiniteGuard(limit=tc.max_nonfinite, total=nonfinite_total)
    scaler = precision.grad_scaler()
    params = [p for p in model.parameters() if p.requires_grad]
    last_loss, window_loss, window_n, window_items = math.nan, 0.0, 0, 0
    window_start = time.perf_counter()
    grad_norm = math.nan
    model.train()
    it = iter(batches)
    try:
        while step < tc.steps:
            batch = _to_device(dataset.get_batch(next(it)), env.device)
            with precision.autocast():
                if critic is None:
                    out = task.step(model, batch, precision)
                else:
                    critic.step = step
                    for group in critic.optimizer.param_groups:
                        group["lr"] = critic_lr * critic_schedule(step)
                    out = task.step(model, batch, precision, critic=critic)
            loss_value = out.loss.detach().float().item()
            finite = D.all_true(math.isfinite(loss_value), env)
            if not guard.should_skip(
                loss_value if finite else math.nan, step=step + 1, last_checkpoint=last_ckpt
            ):
                if scaler is not None:
                    scaler.scale(out.loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    out.loss.backward()
                max_norm = oc.grad_clip if oc.grad_clip > 0 else math.inf
                norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
                grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                last_loss = loss_value
                window_loss += loss_value
                window_n += 1
            optimizer.zero_grad(set_to_none=True)
            window_items += out.items * env.world_size
            step += 1
            logger.advance()
            if step % tc.log_every == 0 or step == tc.steps:
                elapsed = max(time.perf_counter() - window_start, 1e-9)
                logger.log(
                    step,
                    {
                        "loss": window_loss / max(window_n, 1),
                        "lr": scheduler.get_last_lr()[0],
                        "grad_norm": grad_norm,
                        f"{task.items_unit}_per_s": window_items / elapsed,
                        "nonfinite_total": guard.total,
                        **out.metrics,
                    },
                )
                window_loss, window_n, window_items = 0.0, 0, 0
                window_start = time.perf_counter()
            if step % tc.checkpoint_every == 0 or step == tc.steps:
                last_ckpt = _save(
                    out_dir,
                    step,
                    config,
                    model,
                    optimizer,
                    scheduler,
                    batches,
                    sr_generator,
                    guard,
                    env,
                    tc.keep_last,
                    critic=_critic_state(critic),
                )
    finally:
        logger.close()
    final = Path(last_ckpt) if last_ckpt and env.is_main else None
    return TrainResult(
        step=step, loss=last_loss, checkpoint=final, nonfinite_steps=guard.total, model=model
    )


def _save(
    out_dir,
    step,
    config,
    model,
    optimizer,
    scheduler,
    batches,
    sr_generator,
    guard,
    env: D.DistEnv,
    keep_last: int,
    critic: dict[str, Any] | None = None,
) -> str:
    """Gather full state on every rank (collectives), write on rank 0, wait for it."""
    model_sd = D.model_state(model)
    optim_sd = D.optimizer_state(model, optimizer)
    rng = D.all_gather_objects(
        {**capture_rng(env.device), "sr_generator": sr_generator.get_state().cpu()}, env
    )
    path = ckpt.checkpoints_dir(out_dir) / f"step_{step:06d}"
    if env.is_main:
        state = {
            "step": step,
            "world_size": env.world_size,
            "data": batches.state_dict(),
            "optimizer": optim_sd,
            "scheduler": scheduler.state_dict(),
            "rng": rng,
            "nonfinite_total": guard.total,
        }
        if critic is not None:
            state["critic"] = critic
        path = ckpt.save_checkpoint(
            out_dir, step=step, config=config, model=model_sd, state=state, keep_last=keep_last
        )
    D.barrier(env)
    return str(path)


def _critic_state(critic: Critic | None) -> dict[str, Any] | None:
    """The critic's weights and optimizer state, for the training state."""
    if critic is None:
        return None
    return {
        "model": {k: v.detach().cpu() for k, v in critic.module.state_dict().items()},
        "optimizer": critic.optimizer.state_dict(),
    }


def _restore_critic(loaded: ckpt.Checkpoint, critic: Critic) -> None:
    try:
        s = loaded.state["critic"]
        critic.module.load_state_dict(s["model"])
        critic.optimizer.load_state_dict(s["optimizer"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise UserError(f"checkpoint {loaded.path} has no usable critic state: {e}") from None


def _restore(
    loaded: ckpt.Checkpoint,
    model,
    optimizer,
    scheduler,
    batches,
    sr_generator,
    env: D.DistEnv,
    config: dict,
) -> tuple[int, int]:
    """Load everything a resumed run needs; returns (step, non-finite count so far)."""
    s = loaded.state
    try:
        D.load_model_state(model, loaded.model)
        D.load_optimizer_state(model, optimizer, s["optimizer"])
        scheduler.load_state_dict(s["scheduler"])
        batches.load_state_dict(s["data"])
        if s["world_size"] == env.world_size:
            restore_rng(s["rng"][env.rank], env.device)
            sr_generator.set_state(s["rng"][env.rank]["sr_generator"])
        elif env.is_main:
            print(
                f"note: checkpoint was written by {s['world_size']} rank(s), this run has "
                f"{env.world_size}; RNG states are not restored (resume is not bit-exact)"
            )
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise UserError(f"checkpoint {loaded.path} does not fit this recipe: {e}") from None
    old, new = _flat(loaded.config), _flat(config)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed and env.is_main:
        print(f"note: recipe differs from {loaded.path / ckpt.CONFIG} in: {', '.join(changed)}")
    return int(s["step"]), int(s.get("nonfinite_total", 0))
