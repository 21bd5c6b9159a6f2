"""torchrun support: process group, DDP / FSDP2 wrapping, full state dicts, rank helpers.

Everything collective goes through torch.distributed; nothing here reimplements it.
Without torchrun (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) every helper degrades to the
single-process behaviour, so the loop has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from audiogen.errors import UserError


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job (rank 0 of 1 without torchrun)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, prints and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistEnv:
    """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK; init gloo (CPU) or nccl (CUDA) if > 1 rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UserError("train.device = 'cuda' but no CUDA device is available")
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def shutdown(env: DistEnv) -> None:
    """Destroy the process group if this job created one."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, env: DistEnv, parallel: str) -> nn.Module:
    """DDP or FSDP2: ``fully_shard`` on every module that declares itself a unit
    (``fsdp_unit = True``: the LM's decoder layers), then on each direct child with
    parameters, then on the root. Per-layer units keep one layer's full weights gathered at
    a time."""
    if not env.distributed:
        return model
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [env.local_rank] if env.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    if parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for unit in [m for m in model.modules() if getattr(m, "fsdp_unit", False)]:
            fully_shard(unit)
        for child in model.children():
            if any(True for _ in child.parameters()):
                fully_shard(child)
        fully_shard(model)
        return model
    raise UserError(f"unknown train.parallel {parallel!r}; choose 'ddp' or 'fsdp'")


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside a DDP wrapper (FSDP2 shards in place: the module itself)."""
    return getattr(model, "module", model)


def _is_fsdp(model: nn.Module) -> bool:
    return any(type(m).__name__.startswith("FSDP") for m in model.modules())


def frozen_parameters(model: nn.Module) -> set[str]:
    """Names of parameters that never train (e.g. a frozen text encoder).

    Checkpoints leave them out: they come back from their own source when the model is
    built (a pretrained package or directory), and they can be hundreds of MB (T5).
    """
    return {n for n, p in unwrap(model).named_parameters() if not p.requires_grad}


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Full (unsharded) CPU state dict without frozen parameters; a collective under FSDP2,
    so call it on every rank."""
    frozen = frozen_parameters(model)
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(model, options=opts)
    else:
        state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    return {k: v for k, v in state.items() if k not in frozen}


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a full state dict on every rank (FSDP2 re-shards it); frozen parameters may be
    absent (see :func:`frozen_parameters`), anything else missing or unexpected is an error."""
    frozen = frozen_parameters(model)
    expected = set(unwrap(model).state_dict())
    missing = sorted(expected - set(state) - frozen)
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise RuntimeError(
            f"state dict mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        opts = StateDictOptions(full_state_dict=True, strict=False)
        set_model_state_dict(model, state, options=opts)
        return
    unwrap(model).load_state_dict(state, strict=False)


def optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Full optimizer state dict (collective under FSDP2)."""
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(model, optimizer, options=opts)
    return optimizer.state_dict()


def load_optimizer_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Load a full optimizer state dict on every rank."""
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(model, optimizer, state, options=opts)
        return
    optimizer.load_state_dict(state)


def all_gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """Every rank's ``obj`` (a one-item list without torchrun)."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def all_true(flag: bool, env: DistEnv) -> bool:
    """True only if ``flag`` holds on every rank, so all ranks take the same branch."""
    if not env.distributed:
        return flag
    t = torch.tensor([1 if flag else 0], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()
