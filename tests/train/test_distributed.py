"""torchrun: 2 gloo processes (DDP or FSDP2) equal 1 process at the same global batch."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from audiogen.train import checkpoint as ckpt
from audiogen.train import toy
from audiogen.train.loop import train

from .conftest import QUIET, REPO, TOY_RECIPE, cli_module, subprocess_env


@pytest.mark.parametrize("parallel", ["ddp", pytest.param("fsdp", marks=pytest.mark.slow)])
def test_two_processes_equal_one_process(toy_recipe, tmp_path, parallel: str) -> None:
    run = ["train.steps=60", "train.checkpoint_every=1000", "train.batch_size=64"]
    run.append(f"train.parallel={parallel}")  # ignored by the single process
    env = subprocess_env()
    train(toy.TASK, toy_recipe(*run), out_dir=tmp_path / "one")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        cli_module(),
        "train",
        "toy",
        "--recipe",
        str(TOY_RECIPE),
        "--out",
        str(tmp_path / "two"),
    ]
    for o in [*QUIET, *run]:
        cmd += ["--set", o]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    one = load_file(ckpt.resolve_checkpoint(tmp_path / "one") / ckpt.MODEL)
    two = load_file(ckpt.resolve_checkpoint(tmp_path / "two") / ckpt.MODEL)
    state = ckpt.load_checkpoint(tmp_path / "two").state
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5)
