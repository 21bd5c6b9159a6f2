import pytest
import torch

from audiogen.lm.patterns import DelayPattern, ParallelPattern, stereo_delays

from .hf_peers import CARD, K, decoder_kwargs


@pytest.mark.parametrize(
    "pattern", [DelayPattern(4), ParallelPattern(4), DelayPattern(4, delays=stereo_delays(4))]
)
def test_round_trip(pattern):
    codes = torch.randint(0, CARD, (2, 4, 9))
    seq, mask = pattern.build(codes, special_token=CARD)
    assert seq.shape == (2, 4, pattern.seq_len(9))
    assert torch.equal(pattern.revert(seq), codes)
    assert ((seq == CARD) == ~mask).all()
    assert int(mask[0].sum()) == 4 * 9
    assert (seq[..., 0] == CARD).all()  # the start step


def test_delay_layout():
    codes = torch.arange(12).view(1, 4, 3)
    seq, _ = DelayPattern(4).build(codes, special_token=99)
    assert seq[0, 0].tolist() == [99, 0, 1, 2, 99, 99, 99]
    assert seq[0, 3].tolist() == [99, 99, 99, 99, 9, 10, 11]


def test_revert_carries_trailing_dims():
    logits = torch.randn(2, 4, 8, 5)
    assert DelayPattern(4).revert(logits).shape == (2, 4, 4, 5)


def test_matches_hf_build_and_apply_delay_pattern_mask():
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    hf = MusicgenForCausalLM(MusicgenDecoderConfig(**decoder_kwargs(num_hidden_layers=1)))
    b, f, fp = 2, 6, 2
    codes = torch.randint(0, CARD, (b, K, f))
    s = f + K
    # Full codes: HF's pattern mask is the whole sequence.
    ids = torch.cat([torch.full((b, K, 1), CARD), codes], -1).reshape(b * K, -1)
    _, hf_mask = hf.build_delay_pattern_mask(ids, pad_token_id=CARD, max_length=s)
    ours = DelayPattern(K).build(codes, special_token=CARD).seq
    assert torch.equal(hf_mask.reshape(b, K, s), ours)
    # A prompt: unknown positions are -1 in both, and HF's apply keeps the same entries.
    ids = torch.cat([torch.full((b, K, 1), CARD), codes[..., :fp]], -1).reshape(b * K, -1)
    _, hf_mask = hf.build_delay_pattern_mask(ids, pad_token_id=CARD, max_length=s)
    known = torch.cat([codes[..., :fp], torch.full((b, K, f - fp), -1)], -1)
    ours = DelayPattern(K).build(known, special_token=CARD).seq
    assert torch.equal(hf_mask.reshape(b, K, s), ours)
    proposal = torch.randint(0, CARD, (b * K, s))
    applied = hf.apply_delay_pattern_mask(proposal, hf_mask).reshape(b, K, s)
    assert torch.equal(applied, torch.where(ours == -1, proposal.reshape(b, K, s), ours))
