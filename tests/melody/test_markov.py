"""The Markov baseline: a proper distribution, leave-one-out training, and its samples."""

from __future__ import annotations

import torch

from audiogen.melody.evaluate import sample_melodies
from audiogen.melody.markov import MarkovModel
from audiogen.melody.metrics import (
    degree_hist,
    duration_hist,
    in_key_ratio,
    interval_hist,
    kl_bits,
)
from audiogen.melody.model import next_log_probs
from audiogen.melody.tokens import CONDITION_LEN, get_tokenizer


def _fit(tunes, order=4, min_count=1):
    tok = get_tokenizer()
    return MarkovModel.fit(
        [tok.encode(m) for m in tunes],
        vocab_size=tok.vocab_size,
        order=order,
        pad_id=tok.pad_id,
        scored_from=CONDITION_LEN,
        min_count=min_count,
    )


def test_probabilities_sum_to_one(tunes):
    tok = get_tokenizer()
    for min_count in (1, 2):
        model = _fit(tunes[:12], min_count=min_count)
        with torch.no_grad():
            model.log_beta.copy_(torch.tensor([0.5, -0.3, 1.0, 0.0]))
        seen = torch.tensor([tok.encode(tunes[0])[:40]])
        unseen = torch.tensor([tok.encode(tunes[20])[:40]])
        rand = torch.randint(0, tok.vocab_size, (3, 17))
        for ids in (seen, unseen, rand):
            for s in (1, 3, ids.shape[1]):
                p = next_log_probs(model, ids[:, :s]).exp()
                assert torch.allclose(p.sum(-1), torch.ones(ids.shape[0]), atol=1e-5)
                assert (p > 0).all()


def test_token_log_probs_match_the_next_token_distribution(tunes):
    tok = get_tokenizer()
    model = _fit(tunes[:12])
    ids = torch.tensor([tok.encode(tunes[3])[:30]])
    lp = model.token_log_probs(ids)  # [1, 29]
    for j in (CONDITION_LEN, 10, 29):
        full = next_log_probs(model, ids[:, :j])
        assert torch.allclose(lp[0, j - 1], full[0, ids[0, j]], atol=1e-5)


def test_leave_one_out_sees_no_token_twice(tunes):
    """A tune counted once is certain under plain counts; leave-one-out scores it as new."""
    tok = get_tokenizer()
    model = _fit(tunes[:1], order=6)
    ids = torch.tensor([tok.encode(tunes[0])])
    plain = -model.token_log_probs(ids)[0, CONDITION_LEN - 1 :].mean()
    loo = -model.token_log_probs(ids, loo=True)[0, CONDITION_LEN - 1 :].mean()
    assert plain < 0.5 < loo
    loo.backward()
    assert model.log_beta.grad is not None and model.log_beta.grad.abs().sum() > 0


def test_samples_reproduce_a_training_tunes_statistics(tunes):
    tune = tunes[0]
    model = _fit([tune], order=6)
    samples = sample_melodies(model, [tune], 16, max_bars=8, seed=0)
    assert all(s.key == tune.key and s.meter == tune.meter for s in samples)
    assert in_key_ratio([tune]) == 1.0 and in_key_ratio(samples) > 0.95  # smoothing: rare others
    for hist in (degree_hist, interval_hist, duration_hist):
        assert kl_bits(hist([tune]), hist(samples)) < 0.1, hist.__name__
    # ...and differ clearly from another tune's
    assert kl_bits(degree_hist(tunes[1:5]), degree_hist(samples)) > 0.3
