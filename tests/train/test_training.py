"""End-to-end training of the toy task: precision modes, non-finite losses, resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiogen.errors import UserError
from audiogen.train import checkpoint as ckpt
from audiogen.train import toy
from audiogen.train.loop import train
from audiogen.train.precision import resolve_precision

from .conftest import REPO, subprocess_env, train_cmd

# Small learning rate, no schedule: Adam's steps (~lr) are below half a bf16 ulp for most
# weights, so round-to-nearest stalls while stochastic rounding follows fp32.
PRECISION_RUN = [
    "optim.lr=3e-4",
    "optim.schedule=constant",
    "optim.warmup_steps=0",
    "train.steps=600",
    "train.checkpoint_every=100000",
]


def _final_eval(toy_recipe, tmp_path: Path, name: str, *overrides: str) -> float:
    recipe = toy_recipe(*PRECISION_RUN, *overrides)
    result = train(toy.TASK, recipe, out_dir=tmp_path / name)
    return toy.evaluate(result.model, toy.build_dataset(recipe))


def test_bf16_pure_with_sr_tracks_fp32_and_without_sr_is_worse(toy_recipe, tmp_path) -> None:
    fp32 = _final_eval(toy_recipe, tmp_path, "fp32", "train.precision=fp32")
    sr = _final_eval(toy_recipe, tmp_path, "sr", "train.precision=bf16-pure")
    rne = _final_eval(
        toy_recipe, tmp_path, "rne", "train.precision=bf16-pure", "optim.stochastic_rounding=false"
    )
    print(f"held-out MSE: fp32 {fp32:.4f}  bf16-pure+SR {sr:.4f}  bf16-pure no SR {rne:.4f}")
    assert abs(sr - fp32) <= 0.02 * fp32
    assert rne > 1.2 * fp32


def test_bf16_autocast_trains_on_cpu(toy_recipe, tmp_path) -> None:
    recipe = toy_recipe("train.precision=bf16-autocast", "train.steps=50")
    result = train(toy.TASK, recipe, out_dir=tmp_path)
    assert result.step == 50 and result.loss < 2.0


def test_fp16_autocast_needs_cuda() -> None:
    with pytest.raises(UserError, match="needs a CUDA device"):
        resolve_precision("fp16-autocast", torch.device("cpu"))


def _nan_from(step: int):
    """The toy step, returning a NaN loss from call ``step`` on (a diverging model)."""
    calls = [0]

    def step_fn(model, batch, precision):
        calls[0] += 1
        out = toy.toy_step(model, batch, precision)
        if calls[0] >= step:
            out.loss = out.loss * float("nan")
        return out

    return step_fn


def test_non_finite_losses_are_skipped_then_stop_training(toy_recipe, tmp_path) -> None:
    recipe = toy_recipe("train.steps=100", "train.checkpoint_every=10", "train.max_nonfinite=3")
    task = dataclasses.replace(toy.TASK, step=_nan_from(26))
    with pytest.raises(UserError, match="non-finite for 3 steps in a row") as err:
        train(task, recipe, out_dir=tmp_path)
    good = ckpt.resolve_checkpoint(tmp_path)
    assert good.name == "step_000020" and str(good) in str(err.value)
    ckpt.load_checkpoint(good)  # intact and loadable


def test_isolated_non_finite_steps_are_skipped(toy_recipe, tmp_path) -> None:
    calls = [0]

    def flaky(model, batch, precision):
        calls[0] += 1
        out = toy.toy_step(model, batch, precision)
        if calls[0] in (5, 6, 9):
            out.loss = out.loss * float("inf")
        return out

    recipe = toy_recipe("train.steps=20", "train.max_nonfinite=3")
    result = train(dataclasses.replace(toy.TASK, step=flaky), recipe, out_dir=tmp_path)
    assert result.step == 20 and result.nonfinite_steps == 3
    assert ckpt.load_checkpoint(tmp_path).state["nonfinite_total"] == 3


def test_fresh_run_refuses_existing_checkpoints(toy_recipe, tmp_path) -> None:
    train(toy.TASK, toy_recipe("train.steps=5"), out_dir=tmp_path)
    with pytest.raises(UserError, match="already has checkpoints"):
        train(toy.TASK, toy_recipe("train.steps=5"), out_dir=tmp_path)


def test_kill_9_then_resume_is_bit_identical(tmp_path) -> None:
    run = [
        "train.steps=400",
        "train.checkpoint_every=25",
        "train.keep_last=2",
        "train.precision=bf16-pure",
    ]  # SR consumes random bits: the RNG must resume too
    env = subprocess_env()
    # The uninterrupted reference runs alongside the run that gets killed.
    ref_proc = subprocess.Popen(
        train_cmd(tmp_path / "ref", *run),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        train_cmd(killed, *run),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not ckpt.list_checkpoints(killed) and time.monotonic() < deadline:
            assert proc.poll() is None, "training ended before the first checkpoint"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stopped_at = ckpt.load_checkpoint(killed).state["step"]
    assert stopped_at < 400, "the run finished before it could be killed"

    assert ref_proc.wait() == 0
    subprocess.run(
        train_cmd(killed, *run, resume=True), env=env, cwd=REPO, check=True, capture_output=True
    )
    logged = [json.loads(line)["step"] for line in (killed / "train_log.jsonl").open()]
    assert logged == sorted(set(logged)) and logged[-1] == 400  # no duplicates after resume
    ref = load_file(ckpt.resolve_checkpoint(tmp_path / "ref") / ckpt.MODEL)
    got = load_file(ckpt.resolve_checkpoint(killed) / ckpt.MODEL)
    assert ref.keys() == got.keys()
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
