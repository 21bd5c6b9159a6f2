"""The inference fast path of SConv1d (conv with its own zero padding, edges recomputed from
reflect-padded slices) equals the reference path (pad the whole input, then conv) for every
stride, kernel, dilation, causality and odd length, including lengths close to the pads."""

from __future__ import annotations

import itertools

import torch

from audiogen.codecs.conv import SConv1d, pad1d


def test_fast_path_equals_padded_conv():
    torch.manual_seed(0)
    cases = 0
    for k, s, d, causal, t in itertools.product(
        [2, 3, 4, 7, 10, 16], [1, 2, 3, 4, 5, 8], [1, 3], [True, False], [61, 97, 200, 1001]
    ):
        if s > k:
            continue
        conv = SConv1d(3, 4, k, stride=s, dilation=d, causal=causal, norm="none").eval()
        x = torch.randn(2, 3, t)
        with torch.no_grad():
            fast = conv(x)
        with torch.enable_grad():  # the fast path is inference-only: this takes the padded one
            ref = conv(x).detach()
        assert fast.shape == ref.shape, (k, s, d, causal, t)
        assert float((fast - ref).abs().max()) < 1e-5, (k, s, d, causal, t)
        cases += 1
    assert cases > 300


def test_pad1d_without_padding_is_the_input():
    x = torch.randn(1, 2, 10)
    assert pad1d(x, 0, 0) is x
