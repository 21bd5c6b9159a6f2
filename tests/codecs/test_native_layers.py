"""The codec's inference fast paths (compiled LSTM recurrence and ELU, few-output convs)
equal torch's layers, and step aside where they do not apply."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from audiogen.codecs.conv import (
    ELU,
    SLSTM,
    SConv1d,
    _elu_kernel,
    _few_outputs_conv,
    _lstm_kernel,
    lstm_inference,
)


@pytest.mark.parametrize(
    ("width", "batch", "layers"), [(16, 1, 2), (20, 2, 1), (13, 1, 2), (64, 2, 2)]
)
def test_equals_nn_lstm(width: int, batch: int, layers: int) -> None:
    # widths cover whole vectors (16, 64) and scalar tails (20, 13) of the dot products and
    # of the 8-unit gate blocks
    assert _lstm_kernel() is not None, "the LSTM kernel did not build (is cc installed?)"
    torch.manual_seed(width)
    lstm = torch.nn.LSTM(width, width, layers).eval()
    x = torch.randn(37, batch, width) * 2  # large inputs drive gates into saturation too
    with torch.no_grad():
        ref, _ = lstm(x)
        got = lstm_inference(lstm, x)
    assert got is not None and got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=2e-6, rtol=1e-5)


def test_falls_back_where_not_measured_faster_or_not_supported() -> None:
    lstm = torch.nn.LSTM(16, 16, 1).eval()
    with torch.no_grad():
        assert lstm_inference(lstm, torch.randn(5, 4, 16)) is None  # batch 4 at width < 1024
        assert lstm_inference(lstm.double(), torch.randn(5, 1, 16).double()) is None


def test_slstm_keeps_autograd_when_parameters_need_it() -> None:
    layer = SLSTM(8, num_layers=1)
    x = torch.randn(1, 8, 10)
    layer(x).sum().backward()
    assert layer.lstm.weight_hh_l0.grad is not None
    with torch.no_grad():
        torch.testing.assert_close(layer(x), layer.eval()(x), atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("inplace", [False, True])
def test_elu_equals_torch_on_strided_rows(inplace: bool) -> None:
    assert _elu_kernel() is not None, "the ELU kernel did not build (is cc installed?)"
    base = torch.randn(2, 3, 1000) * 30  # deep negatives saturate at -alpha
    x = base[..., 5:903]  # rows strided, length not a multiple of 8
    ref = F.elu(x, alpha=0.7)
    with torch.no_grad():
        got = ELU(alpha=0.7, inplace=inplace)(x)
    torch.testing.assert_close(got, ref, atol=3e-7, rtol=0)
    if inplace:
        assert got.data_ptr() == x.data_ptr()
        torch.testing.assert_close(base[..., 5:903], ref, atol=3e-7, rtol=0)


@pytest.mark.parametrize(("out", "padding", "n"), [(1, 3, 50), (2, 6, 44), (1, 0, 40)])
def test_few_outputs_conv_equals_conv1d(out: int, padding: int, n: int) -> None:
    torch.manual_seed(out)
    x = torch.randn(2, 8, 60)[..., :50]
    w, b = torch.randn(out, 8, 7), torch.randn(out)
    ref = F.conv1d(x, w, b, padding=padding)[..., :n]
    torch.testing.assert_close(_few_outputs_conv(x, w, b, padding, n), ref, atol=1e-5, rtol=1e-5)
    ref = F.conv1d(x, w, None, padding=padding)[..., :n]
    torch.testing.assert_close(_few_outputs_conv(x, w, None, padding, n), ref, atol=1e-5, rtol=1e-5)


def test_decoder_style_output_conv_uses_the_fast_path_and_matches() -> None:
    conv = SConv1d(16, 1, 7, norm="none").eval()
    x = torch.randn(1, 16, 500)
    with torch.no_grad():
        fast = conv(x)
        slow = F.conv1d(F.pad(x, (3, 3), mode="reflect"), conv.conv.weight, conv.conv.bias)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_codec_output_is_the_same_with_the_kernels_off(monkeypatch):
    from audiogen.codecs import Codec
    from audiogen.codecs import conv as conv_module

    torch.manual_seed(0)
    codec = Codec.tiny().prepare_for_inference()
    x = torch.randn(1, 1, codec.sample_rate) * 0.3
    with torch.inference_mode():
        codes = codec.encode(x)
        audio = codec.decode(codes)
    monkeypatch.setattr(conv_module, "_lstm_kernel", lambda: None)
    monkeypatch.setattr(conv_module, "_elu_kernel", lambda: None)
    with torch.inference_mode():
        assert torch.equal(codec.encode(x), codes)
        torch.testing.assert_close(codec.decode(codes), audio, atol=1e-5, rtol=1e-4)
