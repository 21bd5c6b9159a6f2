"""Recipes: TOML into dataclasses; unknown keys and wrong types are errors that name them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from audiogen.errors import UserError
from audiogen.train.recipes import format_recipe, parse_override, parse_recipe, to_dict
from audiogen.train.toy import ToyRecipe

from .conftest import TOY_RECIPE


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_toy_recipe_parses() -> None:
    r = parse_recipe(TOY_RECIPE, ToyRecipe)
    assert r.model.hidden == 64 and r.optim.betas == [0.9, 0.999] and r.train.precision == "fp32"
    assert to_dict(r)["train"]["steps"] == r.train.steps
    assert "[optim]" in format_recipe(r)


def test_unknown_key_names_section_key_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[train]\nstepz = 3\n")
    with pytest.raises(UserError, match=r"r\.toml: unknown key 'train\.stepz'"):
        parse_recipe(path, ToyRecipe)
    with pytest.raises(UserError, match="unknown key 'optimizer'"):
        parse_recipe(_write(tmp_path, "[optimizer]\nlr = 1.0\n"), ToyRecipe)


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    cases = {
        '[train]\nsteps = "ten"\n': r"train\.steps: expected int, got str",
        "[train]\nsteps = 1.5\n": r"train\.steps: expected int, got float",
        "[train]\ntensorboard = 1\n": r"train\.tensorboard: expected bool",
        '[optim]\nlr = "fast"\n': r"optim\.lr: expected a float",
        '[train]\nprecision = "fp8"\n': r"train\.precision: expected one of",
        '[optim]\nbetas = [0.9, "x"]\n': r"optim\.betas\[1\]: expected a float",
        "train = 3\n": r"train: expected a table",
    }
    for text, pattern in cases.items():
        with pytest.raises(UserError, match=pattern):
            parse_recipe(_write(tmp_path, text), ToyRecipe)


def test_int_is_accepted_for_float(tmp_path: Path) -> None:
    assert parse_recipe(_write(tmp_path, "[optim]\nlr = 1\n"), ToyRecipe).optim.lr == 1.0


def test_value_checks_become_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"train\.steps must be >= 1"):
        parse_recipe(_write(tmp_path, "[train]\nsteps = 0\n"), ToyRecipe)


def test_overrides() -> None:
    assert parse_override("optim.lr=3e-4") == (["optim", "lr"], 3e-4)
    assert parse_override("train.precision=bf16-pure") == (["train", "precision"], "bf16-pure")
    assert parse_override('train.precision="fp32"') == (["train", "precision"], "fp32")
    assert parse_override("optim.betas=[0.9, 0.95]") == (["optim", "betas"], [0.9, 0.95])
    r = parse_recipe(TOY_RECIPE, ToyRecipe, ["train.steps=7", "optim.stochastic_rounding=false"])
    assert r.train.steps == 7 and r.optim.stochastic_rounding is False
    with pytest.raises(UserError, match="unknown key 'train.nope'"):
        parse_recipe(TOY_RECIPE, ToyRecipe, ["train.nope=1"])
    with pytest.raises(UserError, match=r"train\.steps: expected int"):
        parse_recipe(TOY_RECIPE, ToyRecipe, ["train.steps=many"])
    with pytest.raises(UserError, match="expected section.key=value"):
        parse_override("train.steps")


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="recipe not found"):
        parse_recipe(tmp_path / "nope.toml", ToyRecipe)
    with pytest.raises(UserError, match="not a valid TOML"):
        parse_recipe(_write(tmp_path, "[train\n"), ToyRecipe)


@dataclass
class _Inner:
    size: int  # required: no default


@dataclass
class _Schema:
    inner: _Inner = field(default_factory=lambda: _Inner(size=1))
    name: str | None = None


def test_generic_schema_required_and_optional(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="missing required key 'inner.size'"):
        parse_recipe(_write(tmp_path, "[inner]\n"), _Schema)
    r = parse_recipe(_write(tmp_path, 'name = "x"\n[inner]\nsize = 2\n'), _Schema)
    assert r == _Schema(inner=_Inner(size=2), name="x")
