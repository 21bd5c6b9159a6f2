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

from audiogen.train.precision import PrecisionPolicy


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


@dataclass(frozen=True)
class Task:
    """A trainable model: how to build it and its data from a recipe, and its step."""

    name: str
    help: str
    recipe_cls: type
    build_model: Callable[[Any], nn.Module]  # recipe -> fp32 CPU model
    build_dataset: Callable[[Any], TrainDataset]  # recipe -> dataset
    step: Callable[[nn.Module, Any, PrecisionPolicy], StepOutput]  # (model, batch, precision)
    items_unit: str = "items"  # name of StepOutput.items in logs, e.g. "tokens"


def get_tasks() -> dict[str, Task]:
    """All registered tasks by name (imported lazily so the CLI starts fast)."""
    from audiogen.train import toy

    return {"toy": toy.TASK}
