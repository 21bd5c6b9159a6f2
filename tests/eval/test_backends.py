"""CLAP (tiny random transformers ClapModel), encodec and codec encoder backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiogen.eval.embeddings import build_embedding


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    """A tiny random ClapModel with feature extractor and a word-level tokenizer, saved."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("clap")
    text = dict(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=32, max_position_embeddings=40)  # fmt: skip
    audio = dict(hidden_size=32, patch_embeds_hidden_size=16, depths=[1, 1],
                 num_attention_heads=[2, 2], window_size=4, spec_size=128, num_mel_bins=64,
                 enable_fusion=False)  # fmt: skip
    cfg = ClapConfig(text_config=text, audio_config=audio, projection_dim=8)
    torch.manual_seed(0)
    ClapModel(cfg).save_pretrained(d)
    ClapFeatureExtractor(max_length_s=1).save_pretrained(d)
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "piano", "drums", "a", "song"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>"
    ).save_pretrained(d)
    return d


def test_clap_embeddings_and_text_score(clap_dir, tmp_path):
    from audiogen import audio
    from audiogen.eval.run import evaluate_clap

    model = build_embedding("clap", weights=clap_dir)
    assert model.sample_rate == 48000 and model.dim == 8
    wav = torch.randn(1, 24000 * 3, generator=torch.Generator().manual_seed(0)) * 0.1
    emb = model.embed(wav, 24000)  # 3 s at 24 kHz -> 48 kHz, 1 s windows -> 3 embeddings
    assert emb.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, rtol=1e-5)
    (gen := tmp_path / "gen").mkdir()
    audio.save(gen / "x.wav", wav, 24000)
    rep = evaluate_clap(generated=gen, model=model, text="a piano song", progress=False)
    assert -1.0 <= rep.summary["clap_score"] <= 1.0 and len(rep.items) == 1


def test_codec_and_encodec_backends(tmp_path):
    from audiogen.codecs import Codec

    torch.manual_seed(0)
    codec = Codec.tiny()
    codec.save(tmp_path / "codec")
    model = build_embedding("codec", weights=tmp_path / "codec")
    wav = torch.randn(1, codec.sample_rate) * 0.1
    emb = model.embed(wav, codec.sample_rate)
    assert emb.shape[1] == codec.config.dimension and emb.shape[0] >= codec.frame_rate - 1
    with torch.no_grad():
        direct = codec.encoder(wav[None]).transpose(1, 2)[0].numpy()
    np.testing.assert_allclose(emb, direct, rtol=1e-5, atol=1e-6)

    encodec = pytest.importorskip("encodec")
    peer = encodec.EncodecModel.encodec_model_24khz(pretrained=False)
    torch.save(peer.state_dict(), tmp_path / "encodec_24khz.th")
    enc = build_embedding("encodec", weights=tmp_path / "encodec_24khz.th")
    x = torch.randn(1, 24000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        want = peer.encoder(x[None]).transpose(1, 2)[0].numpy()
    np.testing.assert_allclose(enc.embed(x, 24000), want, rtol=1e-4, atol=1e-5)
