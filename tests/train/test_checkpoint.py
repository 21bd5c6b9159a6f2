"""Checkpoints: exact round trip, keep-last-N, latest, clear errors for damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from audiogen.errors import UserError
from audiogen.train import checkpoint as ckpt


def _save(out: Path, step: int, keep_last: int = 2) -> Path:
    model = {"w": torch.arange(6.0).view(2, 3), "b": torch.ones(3, dtype=torch.bfloat16)}
    state = {
        "step": step,
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.99), "params": [0]}],
        },
        "rng": [{"torch": torch.get_rng_state(), "python": (3, (1, 2), None)}],
    }
    return ckpt.save_checkpoint(
        out,
        step=step,
        config={"train": {"steps": 9}},
        model=model,
        state=state,
        keep_last=keep_last,
    )


def test_round_trip_restores_types_and_values(tmp_path: Path) -> None:
    path = _save(tmp_path, 5)
    assert sorted(p.name for p in path.iterdir()) == sorted(ckpt.FILES)
    c = ckpt.load_checkpoint(tmp_path)
    assert c.path == path and c.config == {"train": {"steps": 9}}
    assert c.model["b"].dtype == torch.bfloat16 and torch.equal(
        c.model["w"][1], torch.tensor([3.0, 4, 5])
    )
    opt = c.state["optimizer"]
    assert list(opt["state"]) == [0] and opt["param_groups"][0]["betas"] == (0.9, 0.99)
    assert torch.equal(c.state["rng"][0]["torch"], torch.get_rng_state())
    assert c.state["rng"][0]["python"] == (3, (1, 2), None)


def test_keep_last_and_latest(tmp_path: Path) -> None:
    for step in (10, 20, 30):
        _save(tmp_path, step)
    names = [p.name for p in ckpt.list_checkpoints(tmp_path)]
    assert names == ["step_000020", "step_000030"]
    assert ckpt.resolve_checkpoint(tmp_path).name == "step_000030"
    (tmp_path / "checkpoints" / "latest").unlink()  # a crash before `latest` was updated
    assert ckpt.resolve_checkpoint(tmp_path).name == "step_000030"
    assert ckpt.resolve_checkpoint(tmp_path / "checkpoints" / "step_000020").name == "step_000020"


def test_no_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no checkpoint found"):
        ckpt.load_checkpoint(tmp_path)


@pytest.mark.parametrize("name", [ckpt.MODEL, ckpt.STATE_TENSORS, ckpt.STATE_JSON, ckpt.CONFIG])
def test_truncated_file_is_a_clear_error_naming_it(tmp_path: Path, name: str) -> None:
    path = _save(tmp_path, 1)
    data = (path / name).read_bytes()
    (path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=rf"truncated checkpoint file .*{name}"):
        ckpt.load_checkpoint(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = _save(tmp_path, 1)
    (path / ckpt.STATE_TENSORS).unlink()
    with pytest.raises(UserError, match=rf"{ckpt.STATE_TENSORS} is missing"):
        ckpt.load_checkpoint(path)


def test_leftover_temp_dir_is_ignored_and_cleaned(tmp_path: Path) -> None:
    _save(tmp_path, 1)
    junk = tmp_path / "checkpoints" / ".tmp-step_000002-999"
    junk.mkdir()
    (junk / ckpt.MODEL).write_bytes(b"partial")
    assert ckpt.resolve_checkpoint(tmp_path).name == "step_000001"
    _save(tmp_path, 3)
    assert not junk.exists()


def test_config_is_plain_json(tmp_path: Path) -> None:
    path = _save(tmp_path, 1)
    assert json.loads((path / ckpt.CONFIG).read_text()) == {"train": {"steps": 9}}
