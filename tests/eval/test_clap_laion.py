"""laion_clap checkpoints (.pt) load into audiogen's CLAP and match laion_clap's own module.

The peer is laion_clap's ``CLAP`` at tiny sizes with random weights (HTSAT with 2 stages of
16/32 channels, a 1-layer RoBERTa), saved the way laion_clap saves checkpoints
(``{"state_dict": {"module.<key>": tensor}}``). Its RoBERTa is built from a local config
instead of downloading roberta-base.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from audiogen.eval.embeddings import WeightsError, build_embedding
from tests.eval.peers import laion_clap_modules

AUDIO_CFG = dict(model_type="HTSAT", model_name="tiny", sample_rate=48000, audio_length=1024,
                 window_size=1024, hop_size=480, fmin=50, fmax=14000, class_num=10, mel_bins=64,
                 clip_samples=480000)  # fmt: skip
WORDS = ["<s>", "<pad>", "</s>", "<unk>", "a", "calm", "piano", "loud", "drum", "song", "with"]


def _peer(fusion: bool = False):
    """A seeded tiny laion CLAP module (eval mode) with randomised norms and BN statistics."""
    model, htsat = laion_clap_modules()
    from transformers import RobertaConfig, RobertaModel

    # laion's text projection is hard-wired to 768 inputs, so the RoBERTa keeps that width
    # (12 heads of 64 as in roberta-base) with one layer and a small MLP.
    roberta = RobertaConfig(vocab_size=len(WORDS), hidden_size=768, num_hidden_layers=1,
                            num_attention_heads=12, intermediate_size=32,
                            max_position_embeddings=80, type_vocab_size=1, layer_norm_eps=1e-5,
                            pad_token_id=1)  # fmt: skip

    class LocalRoberta:
        @staticmethod
        def from_pretrained(name):
            assert name == "roberta-base"
            return RobertaModel(roberta)

    def tiny_htsat(audio_cfg, enable_fusion=False, fusion_type="None"):
        return htsat.HTSAT_Swin_Transformer(
            spec_size=256, patch_size=4, patch_stride=(4, 4), num_classes=audio_cfg.class_num,
            embed_dim=16, depths=[1, 2], num_heads=[2, 4], window_size=8, config=audio_cfg,
            enable_fusion=enable_fusion, fusion_type=fusion_type,
        )  # fmt: skip

    saved = model.RobertaModel, model.create_htsat_model
    model.RobertaModel, model.create_htsat_model = LocalRoberta, tiny_htsat
    try:
        torch.manual_seed(1 if fusion else 0)
        text_cfg = dict(context_length=77, vocab_size=len(WORDS), width=768, heads=12, layers=1,
                        model_type="roberta")  # fmt: skip
        peer = model.CLAP(embed_dim=32, audio_cfg=AUDIO_CFG, text_cfg=text_cfg,
                          enable_fusion=fusion, fusion_type="aff_2d" if fusion else "None",
                          joint_embed_shape=8)  # fmt: skip
    finally:
        model.RobertaModel, model.create_htsat_model = saved
    g = torch.Generator().manual_seed(2)
    for name, m in peer.named_modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
            if "extractor" in name:
                continue
            m.weight.data = 1 + 0.2 * torch.randn(m.weight.shape, generator=g)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=g)
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean = 0.5 * torch.randn(m.running_mean.shape, generator=g)
                m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=g)
    return peer.eval()


def _save(peer, path) -> None:
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in peer.state_dict().items()}},
               path)  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A word-level tokenizer with RoBERTa's special ids (<s>=0, <pad>=1, </s>=2)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("roberta_tok")
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                            bos_token="<s>", eos_token="</s>").save_pretrained(d)  # fmt: skip
    return d


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    peer = _peer()
    path = tmp_path_factory.mktemp("laion") / "630k-tiny.pt"
    _save(peer, path)
    return peer, path


def test_audio_and_text_match_laion_clap(plain, tokenizer_dir):
    peer, path = plain
    ours = build_embedding("clap", weights=path, tokenizer=tokenizer_dir)
    assert ours.sample_rate == 48000 and ours.dim == 8 and ours.window == 480000

    g = torch.Generator().manual_seed(3)
    t = torch.arange(480000) / 48000
    wav = 0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.05 * torch.randn(480000, generator=g)
    with torch.no_grad():
        out = peer.audio_branch({"waveform": wav[None]}, device="cpu")["embedding"]
        want = torch.nn.functional.normalize(peer.audio_projection(out), dim=-1)[0].numpy()
    got = ours.embed(wav[None], 48000)  # one 10 s window
    assert got.shape == (1, 8)
    np.testing.assert_allclose(got[0], want, atol=1e-4)

    texts = ["a calm piano song", "loud drum", "a song with a loud piano drum song"]
    # laion_clap's own tokenisation: padded to 77 tokens.
    tok = ours.tokenizer(
        texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt"
    )
    with torch.no_grad():
        want_t = peer.get_text_embedding(dict(tok)).numpy()
    got_t = ours.embed_text(texts)
    np.testing.assert_allclose(got_t, want_t, atol=1e-4)
    assert not np.allclose(got_t[0], got_t[1], atol=1e-2)  # the captions are told apart


def test_fusion_checkpoint_matches_laion_clap(tmp_path):
    peer = _peer(fusion=True)
    _save(peer, tmp_path / "fusion.pt")
    ours = build_embedding("clap", weights=tmp_path / "fusion.pt")
    assert ours.fusion
    mel = torch.randn(2, 4, 1001, 64, generator=torch.Generator().manual_seed(4)) * 10 - 40
    for longer in ([False, False], [True, False]):  # global path only; global + local crops
        flags = torch.tensor(longer)
        with torch.no_grad():
            x = peer.audio_branch({"mel_fusion": mel, "longer": flags.clone()}, device="cpu")
            want = torch.nn.functional.normalize(peer.audio_projection(x["embedding"]), dim=-1)
            got = ours.model.get_audio_features(input_features=mel, is_longer=flags[:, None])
        np.testing.assert_allclose(got.pooler_output.numpy(), want.numpy(), atol=1e-4)
    assert ours.embed(torch.randn(1, 48000) * 0.1, 48000).shape == (1, 8)


def test_bad_checkpoints_are_clear_errors(plain, tmp_path):
    peer, path = plain
    with pytest.raises(WeightsError, match="tokenizer"):
        build_embedding("clap", weights=path).embed_text(["a song"])
    with pytest.raises(WeightsError, match="tokenizer directory not found"):
        build_embedding("clap", weights=path, tokenizer=tmp_path / "none")

    # Training scripts often pickle their argparse namespace next to the weights; anything
    # beyond tensors and plain containers needs unpickling and is refused, never run.
    args = argparse.Namespace(amodel="HTSAT-tiny")
    torch.save({"state_dict": {"x": torch.zeros(1)}, "args": args}, tmp_path / "pickled.pt")
    with pytest.raises(WeightsError, match="cannot read weights"):
        build_embedding("clap", weights=tmp_path / "pickled.pt")

    state = {f"module.{k}": v for k, v in peer.state_dict().items()}
    state["module.audio_branch.mel_conv1d.0.weight"] = torch.zeros(64, 64, 5)
    torch.save({"state_dict": state}, tmp_path / "fusion1d.pt")
    with pytest.raises(WeightsError, match="1-D feature fusion"):
        build_embedding("clap", weights=tmp_path / "fusion1d.pt")
    del state["module.audio_branch.mel_conv1d.0.weight"]
    del state["module.audio_branch.layers.1.blocks.0.mlp.fc2.bias"]
    torch.save({"state_dict": state}, tmp_path / "partial.pt")
    with pytest.raises(WeightsError, match="1 missing"):
        build_embedding("clap", weights=tmp_path / "partial.pt")


def test_bare_roberta_bpe_files_are_a_tokenizer(tmp_path):
    from audiogen.eval.embeddings.clap import _tokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a": 4, "b": 5, "ab": 6, "Ġ": 7, "Ġa": 8}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\nĠ a\n", encoding="utf-8")
    tok = _tokenizer(tmp_path)
    assert tok(["ab a", "a"], padding=True)["input_ids"] == [[0, 6, 8, 2], [0, 4, 2, 1]]


def test_cli_clap_with_a_laion_checkpoint(plain, tokenizer_dir, tmp_path, capsys):
    from audiogen import audio
    from tests.eval.test_cli import run

    _, path = plain
    (gen := tmp_path / "gen").mkdir()
    audio.save(gen / "x.wav", torch.randn(1, 24000) * 0.1, 24000)
    argv = ["eval", "clap", "--generated", str(gen), "--weights", str(path), "--text",
            "a calm piano song", "--no-progress", "--out", str(tmp_path / "rep")]  # fmt: skip
    rc, _, err = run(argv, capsys)
    assert rc == 2 and "--tokenizer DIR" in err and not (tmp_path / "rep").exists()
    rc, out, _ = run([*argv, "--tokenizer", str(tokenizer_dir)], capsys)
    assert rc == 0 and -1 <= json.loads(out)["clap_score"] <= 1
