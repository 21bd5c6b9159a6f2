"""The compiled LSTM recurrence equals nn.LSTM and steps aside where it does not apply."""

from __future__ import annotations

import pytest
import torch

from audiogen.codecs.conv import SLSTM, _lstm_kernel, lstm_inference


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
