"""The training tasks ``audiogen train TASK`` knows: recipe schema, builders, step function.

A task is data, not a class to subclass: its step function is the one readable function
per model (CONVENTIONS); the shared loop in :mod:`audiogen.train.loop` does the rest
(precision, distribution, optimizer, logging, checkpoints). The codec and LM tasks add
themselves to :data:`TASKS` next to ``toy``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from audiogen.train.config import OptimConfig


@dataclass
class StepOutput:
    """What a task's step function returns for one batch."""

    loss: torch.Tensor  # scalar [], the value to backpropagate
    metrics: dict[str, float] = field(default_factory=dict)  # named loss terms, for logging
    items: int = 0  # throughput unit processed (samples, tokens, seconds of audio)


class TrainDataset(Protocol):
    """Map-style data the loop shards by index."""

    def __len__(self) -> int: ...

    def get_batch(self, indices: Sequence[int]) -> Any:
        """The batch for ``indices`` (a dataclass of CPU tensors)."""
        ...


@dataclass
class Critic:
    """A second model that the task's step trains with its own optimizer (a GAN discriminator).

    The loop builds it (``Task.build_critic``), its optimizer and LR schedule, keeps its
    weights and optimizer state in the checkpoint's training state, and hands it to the step
    as ``critic=``; the step runs the critic's update itself.
    """

    module: nn.Module
    optimizer: torch.optim.Optimizer
    step: int = 0  # loop steps completed before the current batch


@dataclass(frozen=True)
class Task:
    """A trainable model: how to build it and its data from a recipe, and its step."""

    name: str
    help: str
    recipe_cls: type
    build_model: Callable[[Any], nn.Module]  # recipe -> fp32 CPU model
    build_dataset: Callable[[Any], TrainDataset]  # recipe -> dataset
    # (model, batch, precision: PrecisionPolicy), plus critic=Critic when the task has one
    step: Callable[..., StepOutput]
    items_unit: str = "items"  # name of StepOutput.items in logs, e.g. "tokens"
    # Extra top-level keys for every checkpoint's config.json (beside the resolved recipe),
    # e.g. a format tag that makes the checkpoint directory loadable by the model's own
    # loader (the LM task's checkpoints load with ``MusicGenModel.load``).
    # May be a function of the recipe (the codec task writes the codec's own config there).
    checkpoint_meta: dict[str, Any] | Callable[[Any], dict[str, Any]] = field(default_factory=dict)
    # recipe -> (fp32 CPU critic, its optimizer settings); None: a single-model task.
    build_critic: Callable[[Any], tuple[nn.Module, OptimConfig]] | None = None


def get_tasks() -> dict[str, Task]:
    """All registered tasks by name (imported lazily so the CLI starts fast)."""
    from audiogen.train import codec_task, lm_task, melody_task, toy

    return {
        "toy": toy.TASK,
        "lm": lm_task.TASK,
        "codec": codec_task.TASK,
        "melody": melody_task.TASK,
    }
