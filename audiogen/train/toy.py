"""A tiny deterministic regression task that exercises the whole training stack on CPU.

Data: ``x ~ N(0, 1)`` in ``[N, in_dim]``; targets ``y = teacher(x) + noise`` in
``[N, out_dim]`` from a fixed random two-layer teacher, all drawn from ``data.seed``. The
student is a two-layer MLP. The noise sets a loss floor (``noise**2``), so precision
effects show up as a measurable gap above it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from audiogen.train.config import OptimConfig, TrainConfig
from audiogen.train.precision import PrecisionPolicy
from audiogen.train.tasks import StepOutput, Task


@dataclass
class ToyModelConfig:
    in_dim: int = 16
    hidden: int = 64
    out_dim: int = 4


@dataclass
class ToyDataConfig:
    num_samples: int = 4096
    num_eval: int = 1024
    noise: float = 0.3  # std of the target noise; the best reachable MSE is noise**2
    seed: int = 1234


@dataclass
class ToyRecipe:
    model: ToyModelConfig = field(default_factory=ToyModelConfig)
    data: ToyDataConfig = field(default_factory=ToyDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class ToyMLP(nn.Module):
    """``[B, in_dim] -> [B, out_dim]``: Linear, GELU, Linear."""

    def __init__(self, *, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, hidden)
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.inp(x)))


@dataclass
class ToyBatch:
    x: torch.Tensor  # [B, in_dim]
    y: torch.Tensor  # [B, out_dim]


class ToyRegression:
    """Training and held-out regression data, generated from ``seed`` (no files)."""

    def __init__(self, *, in_dim: int, out_dim: int, cfg: ToyDataConfig) -> None:
        g = torch.Generator().manual_seed(cfg.seed)
        hidden = 32
        w1 = torch.randn(in_dim, hidden, generator=g) / in_dim**0.5
        w2 = torch.randn(hidden, out_dim, generator=g) * (2.0 / hidden**0.5)
        n = cfg.num_samples + cfg.num_eval
        x = torch.randn(n, in_dim, generator=g)
        y = torch.tanh(x @ w1) @ w2 + cfg.noise * torch.randn(n, out_dim, generator=g)
        self.x, self.y = x[: cfg.num_samples], y[: cfg.num_samples]
        self.eval_batch = ToyBatch(x=x[cfg.num_samples :], y=y[cfg.num_samples :])

    def __len__(self) -> int:
        return self.x.shape[0]

    def get_batch(self, indices: Sequence[int]) -> ToyBatch:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ToyBatch(x=self.x[idx], y=self.y[idx])


def build_model(recipe: ToyRecipe) -> ToyMLP:
    m = recipe.model
    return ToyMLP(in_dim=m.in_dim, hidden=m.hidden, out_dim=m.out_dim)


def build_dataset(recipe: ToyRecipe) -> ToyRegression:
    return ToyRegression(in_dim=recipe.model.in_dim, out_dim=recipe.model.out_dim, cfg=recipe.data)


def toy_step(model: nn.Module, batch: ToyBatch, precision: PrecisionPolicy) -> StepOutput:
    """Mean squared error of the prediction; the loss is reduced in fp32."""
    pred = model(precision.cast_input(batch.x))
    loss = F.mse_loss(pred.float(), batch.y)
    return StepOutput(loss=loss, metrics={"mse": loss.item()}, items=batch.x.shape[0])


@torch.no_grad()
def evaluate(model: nn.Module, data: ToyRegression) -> float:
    """Held-out MSE with the weights cast to fp32 (measures the weights, not the arithmetic)."""
    ref = copy.deepcopy(model).float()
    pred = ref(data.eval_batch.x)
    return F.mse_loss(pred, data.eval_batch.y).item()


TASK = Task(
    name="toy",
    help="tiny MLP regression on synthetic data (tests and smoke runs)",
    recipe_cls=ToyRecipe,
    build_model=build_model,
    build_dataset=build_dataset,
    step=toy_step,
    items_unit="samples",
)
