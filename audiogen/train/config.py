"""Recipe sections shared by every training task: ``[train]`` and ``[optim]``.

A task's recipe schema combines these with its own ``[model]`` and ``[data]`` sections,
e.g. ``ToyRecipe(model=..., data=..., optim=OptimConfig(), train=TrainConfig())``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Precision = Literal["fp32", "bf16-autocast", "fp16-autocast", "bf16-pure"]


@dataclass
class OptimConfig:
    """AdamW and the learning-rate schedule (linear warmup, then constant or cosine)."""

    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    stochastic_rounding: bool = True  # only acts on bf16 parameters (bf16-pure)
    warmup_steps: int = 0
    schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr
    grad_clip: float = 0.0  # max global grad norm; 0 disables clipping

    def __post_init__(self) -> None:
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optim.betas must be two values in [0, 1), got {self.betas}")
        if self.lr < 0 or self.warmup_steps < 0 or self.grad_clip < 0:
            raise ValueError("optim.lr, optim.warmup_steps and optim.grad_clip must be >= 0")


@dataclass
class TrainConfig:
    """The loop: steps, batch, precision, device, parallelism, logging and checkpoints."""

    steps: int = 1000
    batch_size: int = 32  # global batch: split evenly across data-parallel ranks
    seed: int = 0
    precision: Precision = "fp32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    parallel: Literal["ddp", "fsdp"] = "ddp"  # used only under torchrun with > 1 rank
    log_every: int = 10
    checkpoint_every: int = 100
    keep_last: int = 3  # checkpoints kept on disk (older ones are deleted)
    max_nonfinite: int = 10  # consecutive non-finite losses before training stops
    # Fine-tuning: start from the weights of a model directory or checkpoint (its
    # model.safetensors) instead of a fresh init; the optimizer and schedule start fresh.
    init: str | None = None
    # Weight names (prefixes) that keep the fresh init instead, e.g. ["melody.proj"] to
    # retrain a projection whose role changed. Every other weight must be in the file.
    init_skip: list[str] = field(default_factory=list)
    tensorboard: bool = True
    progress: bool = True  # tqdm bar on rank 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "keep_last"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_nonfinite < 1:
            raise ValueError(f"train.max_nonfinite must be >= 1, got {self.max_nonfinite}")
