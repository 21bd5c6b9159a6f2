"""Helpers for the training tests: a fast toy recipe and the CLI command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOY_RECIPE = REPO / "recipes" / "toy.toml"
# Quiet and fast: no TensorBoard import, no progress bar.
QUIET = ["train.tensorboard=false", "train.progress=false"]


def cli_module() -> str:
    """``audiogen`` once the train command is registered in the CLI front, else its module."""
    from audiogen.cli import _MODULES

    return "audiogen" if "train" in _MODULES else "audiogen.cli.train"


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    return env


def train_cmd(out: Path, *overrides: str, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", cli_module(), "train", "toy", "--recipe", str(TOY_RECIPE)]
    cmd += ["--out", str(out)]
    for o in [*QUIET, *overrides]:
        cmd += ["--set", o]
    return cmd + (["--resume"] if resume else [])


@pytest.fixture
def toy_recipe():
    """Parse the toy recipe with overrides (quiet by default)."""
    from audiogen.train.recipes import parse_recipe
    from audiogen.train.toy import ToyRecipe

    def make(*overrides: str):
        return parse_recipe(TOY_RECIPE, ToyRecipe, [*QUIET, *overrides])

    return make
