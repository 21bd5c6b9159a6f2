"""Importing audiocraft's exported MusicGen (state_dict.bin + compression_state_dict.bin).

audiocraft is not installed (it pins torch 2.1), so the tests write its export files
themselves, in the layout audiocraft documents and produces:

- the file format is ``audiocraft/utils/export.py``: ``torch.save`` of ``{"best_state":
  state_dict, "xp.cfg": OmegaConf.to_yaml(cfg), "version", "exported": True}``; a released
  codec is exported as ``{"pretrained": "facebook/encodec_32khz", ...}``.
- LM tensor names are audiocraft's ``LMModel`` names, obtained from a HF MusicGen by
  inverting HF's own converter (``transformers/models/musicgen/convert_musicgen_transformers.py``:
  emb -> embed_tokens, linear1/2 -> fc1/2, norm1 / norm_cross / norm2 -> *_layer_norm,
  out_norm -> layer_norm, linears -> lm_heads, fused ``in_proj_weight`` = [q; k; v],
  ``condition_provider.conditioners.description.output_proj`` -> enc_to_dec_proj).
- config keys follow ``config/model/lm/musicgen_lm.yaml`` and ``config/model/encodec/default.yaml``.
- a compression model with weights uses the ``encodec`` package's module names (audiocraft's
  SEANet / RVQ share them), so an ``encodec`` package model supplies that state dict.
"""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch
import yaml

from audiogen.cli import main
from audiogen.lm.audiocraft import from_audiocraft_lm, read_package
from audiogen.pipeline import MusicGenerator

from . import hf_peers

WORDS = "a slow fast irish reel jig air on fiddle flute".split()
PROMPTS = ["a slow irish air on fiddle", "fast jig"]


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def _audiocraft_lm_state(hf) -> dict[str, torch.Tensor]:
    """HF MusicGen decoder -> audiocraft LMModel names (HF's converter, inverted)."""
    sd = hf.state_dict()
    cfg = hf.config.decoder
    out = {}
    for k in range(cfg.num_codebooks):
        out[f"emb.{k}.weight"] = sd[f"decoder.model.decoder.embed_tokens.{k}.weight"]
        out[f"linears.{k}.weight"] = sd[f"decoder.lm_heads.{k}.weight"]
    for i in range(cfg.num_hidden_layers):
        hf_l, ac = f"decoder.model.decoder.layers.{i}.", f"transformer.layers.{i}."
        for hf_name, ac_name in (("self_attn", "self_attn"), ("encoder_attn", "cross_attention")):
            qkv = [sd[f"{hf_l}{hf_name}.{p}_proj.weight"] for p in "qkv"]
            out[f"{ac}{ac_name}.in_proj_weight"] = torch.cat(qkv)
            out[f"{ac}{ac_name}.out_proj.weight"] = sd[f"{hf_l}{hf_name}.out_proj.weight"]
        for hf_name, ac_name in (
            ("self_attn_layer_norm", "norm1"),
            ("encoder_attn_layer_norm", "norm_cross"),
            ("final_layer_norm", "norm2"),
        ):
            for p in ("weight", "bias"):
                out[f"{ac}{ac_name}.{p}"] = sd[f"{hf_l}{hf_name}.{p}"]
        out[f"{ac}linear1.weight"] = sd[f"{hf_l}fc1.weight"]
        out[f"{ac}linear2.weight"] = sd[f"{hf_l}fc2.weight"]
    for p in ("weight", "bias"):
        out[f"out_norm.{p}"] = sd[f"decoder.model.decoder.layer_norm.{p}"]
        out[f"condition_provider.conditioners.description.output_proj.{p}"] = sd[
            f"enc_to_dec_proj.{p}"
        ]
    return {k: v.clone() for k, v in out.items()}


def _lm_cfg(hf) -> str:
    d = hf.config.decoder
    cfg = {
        "sample_rate": 1000,
        "channels": 1,
        "lm_model": "transformer_lm",
        "codebooks_pattern": {
            "modeling": "delay",
            "delay": {"delays": list(range(d.num_codebooks)), "flatten_first": 0},
        },
        "transformer_lm": {
            "dim": d.hidden_size,
            "num_heads": d.num_attention_heads,
            "num_layers": d.num_hidden_layers,
            "hidden_scale": d.ffn_dim // d.hidden_size,
            "n_q": "${codebooks}",
            "card": d.vocab_size,
            "activation": "gelu",
            "norm_first": True,
            "bias_ff": False,
            "bias_attn": False,
            "bias_proj": False,
            "memory_efficient": True,
            "positional_embedding": "sin",
            "layer_scale": None,
            "cross_attention": False,
        },
        "codebooks": d.num_codebooks,
        "conditioners": {"description": {"model": "t5", "t5": {"name": "t5-base"}}},
        "fuser": {
            "cross_attention_pos_emb": False,
            "sum": [],
            "prepend": [],
            "cross": ["description"],
            "input_interpolate": [],
        },
        "classifier_free_guidance": {"training_dropout": 0.3, "inference_coef": 3.0},
    }
    return yaml.safe_dump(cfg)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A random HF MusicGen and the same weights as an audiocraft export + T5 / codec dirs."""
    root = tmp_path_factory.mktemp("audiocraft")
    hf = hf_peers.musicgen()
    g = torch.Generator().manual_seed(0)
    for name, buf in hf.audio_encoder.named_buffers():
        if name.endswith("codebook.embed"):
            buf.copy_(torch.randn(buf.shape, generator=g))
    tok = _tokenizer()
    (root / "ac").mkdir()
    pkg = {
        "best_state": _audiocraft_lm_state(hf),
        "xp.cfg": _lm_cfg(hf),
        "version": "1.3.0",
        "exported": True,
    }
    torch.save(pkg, root / "ac" / "state_dict.bin")
    torch.save(
        {"pretrained": "facebook/encodec_32khz", "exported": True, "version": "1.3.0"},
        root / "ac" / "compression_state_dict.bin",
    )
    hf.text_encoder.save_pretrained(root / "t5")
    tok.save_pretrained(root / "t5")
    hf.audio_encoder.save_pretrained(root / "codec")
    return hf, tok, root


def test_lm_logits_equal_hf_import(export, tmp_path):
    hf, _, root = export
    ours = from_audiocraft_lm(root / "ac")
    assert ours.t5_name == "t5-base"
    hf.save_pretrained(tmp_path / "hf")
    from audiogen.lm import from_hf_musicgen

    ref = from_hf_musicgen(tmp_path / "hf")
    # audiocraft's sinusoidal positions have no table size; HF's config names one.
    assert dataclasses.replace(ours.config, max_positions=128) == ref.config
    torch.manual_seed(0)
    seq = torch.randint(0, hf_peers.CARD + 1, (2, hf_peers.K, 7))
    cross = torch.randn(2, 5, hf_peers.DIM)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        a = ours.lm(seq, cross=cross, cross_mask=mask).logits
        b = ref.lm(seq, cross=cross, cross_mask=mask).logits
    assert torch.equal(a, b)
    for p in ("weight", "bias"):
        assert torch.equal(ours.text_proj[p], ref.text_proj[p])


def test_cli_import_greedy_audio_equals_hf_generate(export, tmp_path, capsys):
    hf, tok, root = export
    args = ["import", "musicgen", str(root / "ac"), "--out", str(tmp_path / "gen")]
    args += ["--t5", str(root / "t5"), "--codec", str(root / "codec")]
    assert main(args) == 0
    assert "audiocraft export" in capsys.readouterr().out
    frames = 10
    enc = tok(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = hf.generate(
            **enc, do_sample=False, guidance_scale=3.0, max_new_tokens=frames + hf_peers.K - 1
        )
    gen = MusicGenerator.load(tmp_path / "gen", device="cpu", dtype=torch.float32)
    gen.set_generation_params(duration=frames / gen.frame_rate, use_sampling=False)
    wav = gen.generate(PROMPTS)
    assert wav.shape == ref.shape
    assert (wav - ref).abs().max() < 1e-4
    assert ref.std() > 1e-3


def test_cli_errors_exit_2_without_output(export, tmp_path, capsys):
    _, _, root = export
    out = tmp_path / "gen"
    # No --t5: the T5 is not in the export and nothing downloads.
    assert main(["import", "musicgen", str(root / "ac"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--t5" in err and "t5-base" in err
    # A released codec named without weights needs --codec.
    assert main(["import", "musicgen", str(root / "ac"), "--out", str(out), "--t5", "x"]) == 2
    assert "--codec" in capsys.readouterr().err
    # A pickle that needs arbitrary objects is refused, not executed.
    bad = tmp_path / "bad"
    bad.mkdir()
    torch.save({"best_state": {}, "xp.cfg": argparse.Namespace(a=1)}, bad / "state_dict.bin")
    assert main(["import", "musicgen", str(bad), "--out", str(out), "--t5", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unpickling" in err and "state_dict.bin" in err
    assert not out.exists()


def test_unsupported_settings_are_named(export, tmp_path):
    hf, _, _ = export
    cfg = yaml.safe_load(_lm_cfg(hf))
    cfg["transformer_lm"]["bias_ff"] = True
    torch.save(
        {"best_state": _audiocraft_lm_state(hf), "xp.cfg": yaml.safe_dump(cfg)},
        tmp_path / "state_dict.bin",
    )
    from audiogen.errors import UserError

    with pytest.raises(UserError, match="bias_ff"):
        from_audiocraft_lm(tmp_path)


def test_compression_model_with_weights_matches_encodec_peer(tmp_path):
    """A compression_state_dict.bin with best_state (SEANet + RVQ under the encodec
    package's names) converts to a Codec with the same codes and audio."""
    encodec = pytest.importorskip("encodec")
    from encodec.modules import SEANetDecoder, SEANetEncoder
    from encodec.quantization import ResidualVectorQuantizer

    from audiogen.audiocraft import load_audiocraft_codec

    sea = dict(
        channels=1,
        dimension=16,
        n_filters=4,
        n_residual_layers=1,
        ratios=[4, 2],
        norm="weight_norm",
        causal=False,
        pad_mode="constant",
        true_skip=True,
        lstm=1,
    )
    torch.manual_seed(0)
    peer = encodec.EncodecModel(
        SEANetEncoder(**sea),
        SEANetDecoder(**sea),
        ResidualVectorQuantizer(dimension=16, n_q=4, bins=32),
        target_bandwidths=[2.5],
        sample_rate=1000,
        channels=1,
    ).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, buf in peer.named_buffers():
            if name.endswith(".embed"):
                buf.copy_(torch.randn(buf.shape, generator=g) * 0.3)
            elif name.endswith(".inited"):
                buf.fill_(1.0)
    cfg = {
        "sample_rate": 1000,
        "channels": 1,
        "compression_model": "encodec",
        "encodec": {
            "autoencoder": "seanet",
            "quantizer": "rvq",
            "sample_rate": "${sample_rate}",
            "channels": "${channels}",
            "causal": False,
            "renormalize": False,
        },
        "seanet": {
            **{k: v for k, v in sea.items() if k != "causal"},
            "causal": "${encodec.causal}",
            "activation": "ELU",
            "activation_params": {"alpha": 1.0},
            "norm_params": {},
            "disable_norm_outer_blocks": 0,
            "decoder": {"trim_right_ratio": 1.0, "final_activation": None},
            "encoder": {},
        },
        "rvq": {"n_q": 4, "bins": 32, "decay": 0.99, "kmeans_iters": 50},
    }
    path = tmp_path / "compression_state_dict.bin"
    torch.save(
        {"best_state": peer.state_dict(), "xp.cfg": yaml.safe_dump(cfg), "exported": True}, path
    )
    assert read_package(path).cfg["encodec"]["sample_rate"] == 1000  # ${...} resolved
    codec = load_audiocraft_codec(path, None, num_codebooks=4)
    x = torch.randn(2, 1, 400) * 0.3
    with torch.no_grad():
        frames = peer.encode(x)
        ref_audio = peer.decode(frames)
        codes = codec.encode(x)
        audio = codec.decode(codes)
    assert torch.equal(codes, frames[0][0])
    assert codes.unique().numel() > 8
    assert audio.shape == ref_audio.shape and (audio - ref_audio).abs().max() < 1e-5
