"""The melody task through the shared training loop (bf16-pure + stochastic-rounding AdamW
for the Transformer; leave-one-out backoff weights for the Markov chain)."""

from __future__ import annotations

import json

import pytest
import torch

from audiogen.melody.dataset import MelodyDataConfig
from audiogen.melody.metrics import bits_per_note
from audiogen.melody.model import MelodyModelConfig, load_model
from audiogen.train.config import OptimConfig, TrainConfig
from audiogen.train.loop import train
from audiogen.train.melody_task import MelodyRecipe
from audiogen.train.tasks import get_tasks


def _recipe(midi_dir, tmp_path, model: MelodyModelConfig, **train) -> MelodyRecipe:
    data = MelodyDataConfig(
        sources=[f"midi:{midi_dir}"],
        cache_dir=str(tmp_path / "cache"),
        valid=0.0,
        test=0.0,
        transpose=2,
    )
    tc = TrainConfig(
        device="cpu", log_every=5, tensorboard=False, progress=False, checkpoint_every=1000, **train
    )
    return MelodyRecipe(model=model, data=data, optim=OptimConfig(lr=3e-3), train=tc)


def _losses(out):
    return [json.loads(x)["loss"] for x in (out / "train_log.jsonl").read_text().splitlines()]


def test_transformer_trains_in_pure_bf16(midi_dir, tunes, tmp_path):
    model = MelodyModelConfig(
        kind="transformer", dim=48, num_layers=2, num_heads=2, ffn_dim=96, dropout=0.0
    )
    recipe = _recipe(midi_dir, tmp_path, model, steps=30, batch_size=8, precision="bf16-pure")
    result = train(get_tasks()["melody"], recipe, out_dir=tmp_path / "run")
    assert all(p.dtype == torch.bfloat16 for p in result.model.parameters())
    losses = _losses(tmp_path / "run")
    assert losses[-1] < losses[0] - 1.0, losses
    loaded = load_model(tmp_path / "run")  # run dir -> latest checkpoint
    assert loaded.config.kind == "transformer"
    assert bits_per_note(loaded.model, tunes[:6]) < 25.0  # untrained: ~ 3.3 tokens x 8.7 bits


def test_markov_task_counts_and_fits_backoff(midi_dir, tunes, tmp_path):
    recipe = _recipe(
        midi_dir, tmp_path, MelodyModelConfig(kind="markov", order=4), steps=10, batch_size=8
    )
    recipe.optim.lr = 0.1
    train(get_tasks()["melody"], recipe, out_dir=tmp_path / "mk")
    loaded = load_model(tmp_path / "mk")
    beta = loaded.model.log_beta.detach()
    assert loaded.model.num_ngrams() > 0 and beta.abs().sum() > 0  # the loop moved them
    assert bits_per_note(loaded.model, tunes[:6]) < 8.0


def test_unknown_recipe_key_names_it(tmp_path):
    from audiogen.errors import UserError
    from audiogen.train.recipes import parse_recipe

    bad = tmp_path / "r.toml"
    bad.write_text('[model]\nkind = "transformer"\nlayers = 3\n')
    with pytest.raises(UserError, match="model.layers"):
        parse_recipe(bad, MelodyRecipe)


def test_examples_transpose_and_window_deterministically(tunes):
    from audiogen.melody.dataset import MelodyData
    from audiogen.melody.tokens import CONDITION_LEN, get_tokenizer

    tok = get_tokenizer()
    cfg = MelodyDataConfig(transpose=3, style_dropout=0.0, window=40)
    data = MelodyData(tunes[:4], cfg)
    assert len(data) == 4 * 7
    for i in (0, 5, 13, 27):
        ex = data.example(i)
        assert ex == data.example(i) and len(ex) == 40
        shift = i // 4 - 3
        full = tok.encode(tunes[i % 4].transpose(shift))
        assert ex[:CONDITION_LEN] == full[:CONDITION_LEN]
        body = ex[CONDITION_LEN:]
        starts = [j for j in range(len(full)) if full[j : j + len(body)] == body]
        assert starts and starts[0] >= CONDITION_LEN
