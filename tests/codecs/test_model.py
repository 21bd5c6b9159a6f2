"""Codec model behaviour: shapes, segments, save/load, causality, error paths."""

from __future__ import annotations

import json

import pytest
import torch

from audiogen.codecs import Codec, CodecConfig, CodecError, build_codec
from audiogen.codecs.conv import SConv1d, Snake, pad1d
from audiogen.codecs.seanet import has_weight_norm
from audiogen.errors import UserError


def test_interface_attributes_and_shapes():
    codec = Codec.tiny(channels=2)
    assert (codec.sample_rate, codec.channels, codec.frame_rate) == (16_000, 2, 250)
    assert (codec.num_codebooks, codec.cardinality) == (4, 64)
    x = torch.randn(3, 2, 1000)
    codes = codec.encode(x)
    assert codes.shape == (3, 4, 16) and codes.dtype == torch.int64  # ceil(1000 / 64)
    assert int(codes.max()) < codec.cardinality
    assert codec.decode(codes).shape == (3, 2, 16 * 64)
    assert codec.decode(codes, length=1000).shape == (3, 2, 1000)


def test_set_bandwidth_selects_codebooks():
    codec = Codec.tiny()
    codec.set_bandwidth(1.5)  # 6 bits * 250 Hz = 1.5 kbps per codebook
    assert codec.num_codebooks == 1
    assert codec.encode(torch.randn(1, 1, 640)).shape == (1, 1, 10)
    codec.set_bandwidth(None)
    assert codec.num_codebooks == 4
    with pytest.raises(UserError, match="3 kbps is not supported"):
        codec.set_bandwidth(3.0)


def test_very_short_input_uses_reflect_fallback():
    # Shorter than every conv's padding: reflect padding must still work.
    codec = Codec.tiny()
    x = torch.randn(1, 1, 3)
    assert codec.decode(codec.encode(x), length=3).shape == (1, 1, 3)
    y = pad1d(torch.arange(3.0)[None], 4, 5, mode="reflect")
    assert y.shape[-1] == 12


def test_segmented_normalised_codec_round_trips_length_and_scale():
    config = CodecConfig.tiny(channels=2).replace(
        norm="time_group_norm", normalize=True, segment=0.1, overlap=0.1
    )
    codec = build_codec(config).eval()
    x = torch.randn(1, 2, 3500) * 0.01
    enc = codec.encode_audio(x)
    seg, stride = codec.segment_length, codec.segment_stride  # 1600, 1440
    n_seg = len(range(0, 3500, stride))
    assert enc.scales.shape == (1, n_seg)
    lengths = [min(seg, 3500 - o) for o in range(0, 3500, stride)]
    assert enc.codes.shape[-1] == sum(-(-n // 64) for n in lengths)
    out = codec.decode_audio(enc)
    assert out.shape == x.shape
    # Each segment is rescaled by its own scale; overlap-add is linear in them.
    torch.testing.assert_close(codec.decode(enc.codes, scales=2 * enc.scales, length=3500), 2 * out)
    assert abs(float(enc.scales[0, 0]) - float(x[..., :seg].mean(1).pow(2).mean().sqrt())) < 1e-6


def test_save_load_round_trip(tmp_path):
    codec = Codec.tiny()
    codec.train()
    codec(torch.randn(2, 1, 2000))  # k-means init: codebooks become data-dependent
    codec.eval()
    codec.set_bandwidth(6.0)
    x = torch.randn(1, 1, 1200)
    codes = codec.encode(x)
    codec.save(tmp_path / "c")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = Codec.load(tmp_path / "c")
    assert loaded.config == codec.config and loaded.bandwidth == 6.0
    assert not loaded.training and has_weight_norm(loaded)
    assert torch.equal(loaded.encode(x), codes)
    assert torch.allclose(loaded.decode(codes), codec.decode(codes))


def test_save_load_folded(tmp_path):
    codec = Codec.tiny().prepare_for_inference()
    codec.save(tmp_path / "f")
    loaded = Codec.load(tmp_path / "f")
    assert not has_weight_norm(loaded)
    x = torch.randn(1, 1, 700)
    assert torch.equal(loaded.encode(x), codec.encode(x))
    torch.testing.assert_close(loaded.decode(loaded.encode(x)), codec.decode(codec.encode(x)))


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(CodecError, match="codec directory not found"):
        Codec.load(tmp_path / "nope")
    Codec.tiny().save(tmp_path / "c")
    weights = tmp_path / "c" / "model.safetensors"
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(CodecError, match="model.safetensors: cannot read weights"):
        Codec.load(tmp_path / "c")
    weights.unlink()
    with pytest.raises(CodecError, match="model.safetensors: missing"):
        Codec.load(tmp_path / "c")
    Codec.tiny().save(tmp_path / "d")
    cfg = tmp_path / "d" / "config.json"
    meta = json.loads(cfg.read_text())
    meta["codec"]["colour"] = "red"
    cfg.write_text(json.dumps(meta))
    with pytest.raises(CodecError, match=r"config.json: .*unknown codec config key\(s\): colour"):
        Codec.load(tmp_path / "d")
    cfg.write_text("{")
    with pytest.raises(CodecError, match="config.json: not a valid codec config"):
        Codec.load(tmp_path / "d")


def test_wrong_input_shapes_raise():
    codec = Codec.tiny()
    with pytest.raises(ValueError, match=r"expected wav \[B, 1, T\]"):
        codec.encode(torch.randn(1, 2, 100))
    with pytest.raises(ValueError, match="expected codes"):
        codec.decode(torch.zeros(4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="codebooks"):
        codec.decode(torch.zeros(1, 5, 3, dtype=torch.long))


def test_config_validation():
    with pytest.raises(ValueError, match="cannot be causal"):
        CodecConfig(norm="time_group_norm", causal=True)
    with pytest.raises(ValueError, match="power of 2"):
        CodecConfig(bins=1000)
    with pytest.raises(ValueError, match="activation must be one of"):
        CodecConfig(activation="relu")


def test_snake_activation_formula_and_learned_frequency():
    snake = Snake(3)
    with torch.no_grad():
        snake.alpha.copy_(torch.tensor([0.5, 1.0, 4.0]).view(1, 3, 1))
    x = torch.linspace(-3, 3, 11).expand(2, 3, 11)
    a = torch.tensor([0.5, 1.0, 4.0]).view(1, 3, 1)
    torch.testing.assert_close(snake(x), x + torch.sin(a * x) ** 2 / a)
    snake(x).sum().backward()
    assert snake.alpha.grad.shape == (1, 3, 1) and bool(snake.alpha.grad.abs().gt(0).all())


def test_snake_codec_trains_saves_and_loads(tmp_path):
    codec = build_codec(CodecConfig.tiny().replace(activation="snake"))
    snakes = [m for m in codec.modules() if isinstance(m, Snake)]
    # Every SEANet activation is a Snake sized to its input: none is left an ELU.
    assert snakes and not any(isinstance(m, torch.nn.ELU) for m in codec.modules())
    x = torch.randn(2, 1, 2000)
    codec.train()
    codec(x).audio.pow(2).mean().backward()
    assert all(m.alpha.grad is not None for m in snakes)
    codec.eval()
    codec.save(tmp_path / "s")
    loaded = Codec.load(tmp_path / "s")
    assert loaded.config.activation == "snake"
    codes = codec.encode(x)
    assert torch.equal(loaded.encode(x), codes)
    torch.testing.assert_close(loaded.decode(codes), codec.decode(codes))
    ref = codec.decode(codes)
    codec.prepare_for_inference()
    torch.testing.assert_close(codec.decode(codes), ref, atol=1e-5, rtol=1e-5)


def _future_grad(module: torch.nn.Module, x: torch.Tensor, t_out: int, first_future: int) -> float:
    x = x.clone().requires_grad_(True)
    y = module(x)
    y[..., t_out].sum().backward()
    return float(x.grad[..., first_future:].abs().sum())


def test_causal_conv_has_no_gradient_from_the_future():
    conv = SConv1d(2, 3, 7, stride=2, causal=True, pad_mode="constant")
    x = torch.randn(1, 2, 40)
    # Output frame f of a stride-2 causal conv sees samples up to 2f + 1.
    for f in (0, 5, 12):
        assert _future_grad(conv, x, f, 2 * f + 2) == 0
    non_causal = SConv1d(2, 3, 7, stride=2, causal=False, pad_mode="constant")
    assert _future_grad(non_causal, x, 5, 12) > 0


def test_causal_codec_encoder_and_decoder_are_causal():
    codec = build_codec(CodecConfig.tiny(causal=True).replace(pad_mode="constant"))
    hop = codec.hop_length
    x = torch.randn(1, 1, 20 * hop)
    # Latent frame f depends on samples < (f + 1) * hop only.
    assert _future_grad(codec.encoder, x, 7, 8 * hop) == 0
    assert _future_grad(codec.encoder, x, 7, 7 * hop) > 0
    z = torch.randn(1, codec.config.dimension, 20)
    # Output sample t depends on latent frames <= t // hop only.
    assert _future_grad(codec.decoder, z, 5 * hop + 3, 6) == 0


@pytest.mark.parametrize("causal", [False, True])
def test_fast_inference_path_matches_plain_path(causal):
    # Ratios with kernel = 2 * stride (polyphase) for odd and even strides.
    config = CodecConfig.tiny(causal=causal).replace(ratios=(3, 2, 5), kmeans_init=False)
    codec = build_codec(config).eval()
    x = torch.randn(2, 1, 1234)
    codes = codec.encode(x)
    ref = codec.decode(codes)
    codec.prepare_for_inference()
    assert all(
        hasattr(m, "_poly_weight")
        for m in codec.modules()
        if type(m).__name__ == "SConvTranspose1d"
    )
    assert torch.equal(codec.encode(x), codes)
    torch.testing.assert_close(codec.decode(codes), ref, atol=1e-5, rtol=1e-5)
    # Training after preparation still works (fast paths need autograd off).
    codec.train()
    out = codec(x)
    out.audio.sum().backward()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("kernel", "dilation"), [(7, 1), (3, 2), (1, 1)])
@pytest.mark.parametrize("length", [2, 9, 50])
def test_conv_inference_path_matches_training_path(causal, kernel, dilation, length):
    conv = SConv1d(3, 4, kernel, dilation=dilation, causal=causal)
    x = torch.randn(2, 3, length)
    ref = conv(x).detach()  # autograd on: the plain padded path
    with torch.inference_mode():
        out = conv(x)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)


def test_codes_can_feed_autograd():
    # Codes go straight into an LM's embedding during training; they must not be
    # inference tensors.
    codec = Codec.tiny()
    codes = codec.encode(torch.randn(1, 1, 640))
    emb = torch.nn.Embedding(codec.cardinality, 3)
    emb(codes).sum().backward()
    assert emb.weight.grad is not None
