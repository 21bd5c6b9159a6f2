"""Neural melody models: cached decoding equals the plain forward, windows, save/load."""

from __future__ import annotations

import json

import pytest
import torch

from audiogen.errors import UserError
from audiogen.melody.model import (
    MelodyModelConfig,
    Stepper,
    build_model,
    load_model,
    next_log_probs,
    save_model,
    token_log_probs,
)
from audiogen.melody.tokens import get_tokenizer

SMALL = {"dim": 32, "num_layers": 2, "num_heads": 2, "ffn_dim": 64, "dropout": 0.0}


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_stepper_matches_full_forward(kind, tunes):
    torch.manual_seed(0)
    model = build_model(MelodyModelConfig(kind=kind, max_len=64, **SMALL)).eval()
    ids = torch.tensor([get_tokenizer().encode(m)[:50] for m in tunes[:2]])
    stepper = Stepper(model)
    got = [stepper.start(ids[:, :6])]
    for j in range(6, 50):
        got.append(stepper.advance(ids[:, j]))
    for j, lp in enumerate(got[:-1]):
        assert torch.allclose(lp, next_log_probs(model, ids[:, : 6 + j]), atol=1e-5)
    # past max_len the stepper re-reads a window: still a distribution
    assert torch.allclose(got[-1].exp().sum(-1), torch.ones(2), atol=1e-5)


def test_transformer_is_causal():
    torch.manual_seed(0)
    model = build_model(MelodyModelConfig(kind="transformer", max_len=32, **SMALL))
    emb = model.emb(torch.randint(0, 100, (1, 12))).detach().requires_grad_(True)
    x = emb + model.pos(torch.arange(12))
    for block in model.blocks:
        x = block(x)
    x[0, 5].sum().backward()
    assert emb.grad[0, 6:].abs().sum() == 0 and emb.grad[0, :6].abs().sum() > 0


def test_windowed_scoring_of_long_tunes(tunes):
    torch.manual_seed(0)
    cfg = MelodyModelConfig(kind="transformer", max_len=24, **SMALL)
    model = build_model(cfg).eval()
    ids = torch.tensor([get_tokenizer().encode(tunes[0])[:80]])
    with torch.no_grad():
        lp = token_log_probs(model, ids)
        assert lp.shape == (1, 79) and torch.isfinite(lp).all() and (lp < 0).all()
        # the first window is the plain forward
        assert torch.allclose(lp[0, :23], token_log_probs(model, ids[:, :24])[0], atol=1e-5)


def test_save_and_load(tmp_path, tunes):
    torch.manual_seed(0)
    cfg = MelodyModelConfig(kind="transformer", max_len=64, **SMALL)
    model = build_model(cfg).eval()
    save_model(model, cfg, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    ids = torch.tensor([get_tokenizer().encode(tunes[0])[:40]])
    assert torch.equal(next_log_probs(model, ids), next_log_probs(loaded.model, ids))
    cfg_json = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg_json["format"] = "something-else"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg_json))
    with pytest.raises(UserError, match="not a melody model"):
        load_model(tmp_path / "m")
    with pytest.raises(UserError, match="no such melody model"):
        load_model(tmp_path / "missing")
