"""SEANet encoder/decoder (EnCodec's convolutional autoencoder), causal or not.

Module names mirror the peers so weight import is a rename: every layer sits in
``layers`` (a ``ModuleList``), a residual block holds ``block`` and ``shortcut``, and the
LSTM wrapper holds ``lstm``. That is exactly HF transformers' layout; the ``encodec``
package differs only by ``model`` / ``conv.conv`` / ``convtr.convtr``. Padding rules live
in :mod:`audiogen.codecs.conv`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from audiogen.codecs.conv import NORMS, SLSTM, SConv1d, SConvTranspose1d
from audiogen.codecs.conv import activation as _activation

__all__ = ["NORMS", "ResnetBlock", "SEANetDecoder", "SEANetEncoder", "SLSTM", "SConv1d"]


class ResnetBlock(nn.Module):
    """SEANet residual block: act, conv(k, dilation), act, conv(1), plus a shortcut (act is
    ELU, or Snake with ``activation="snake"``)."""

    def __init__(
        self,
        dim: int,
        *,
        kernel_size: int = 3,
        dilation: int = 1,
        compress: int = 2,
        true_skip: bool = False,
        causal: bool = False,
        norm: str = "weight_norm",
        pad_mode: str = "reflect",
        activation: str = "elu",
    ) -> None:
        super().__init__()
        hidden = dim // compress
        conv_args = dict(causal=causal, norm=norm, pad_mode=pad_mode)
        self.block = nn.ModuleList(
            [
                _activation(activation, dim),
                SConv1d(dim, hidden, kernel_size, dilation=dilation, **conv_args),
                _activation(activation, hidden),
                SConv1d(hidden, dim, 1, **conv_args),
            ]
        )
        self.shortcut = nn.Identity() if true_skip else SConv1d(dim, dim, 1, **conv_args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for layer in self.block:
            y = layer(y)
        if torch.is_grad_enabled():
            return self.shortcut(x) + y
        return y.add_(self.shortcut(x))  # inference: reuse y's memory


class SEANetEncoder(nn.Module):
    """Waveform to latent frames: ``[B, channels, T] -> [B, dimension, ceil(T / hop)]``.

    ``ratios`` are given in decoder (upsampling) order, as in EnCodec; the encoder applies
    them reversed.
    """

    def __init__(
        self,
        *,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 32,
        n_residual_layers: int = 1,
        ratios: Sequence[int] = (8, 5, 4, 2),
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        causal: bool = False,
        norm: str = "weight_norm",
        pad_mode: str = "reflect",
        true_skip: bool = False,
        compress: int = 2,
        lstm_layers: int = 2,
        activation: str = "elu",
    ) -> None:
        super().__init__()
        self.hop_length = math.prod(ratios)
        conv_args = dict(causal=causal, norm=norm, pad_mode=pad_mode)
        width = n_filters
        layers: list[nn.Module] = [SConv1d(channels, width, kernel_size, **conv_args)]
        for ratio in reversed(ratios):
            for j in range(n_residual_layers):
                layers.append(
                    ResnetBlock(
                        width,
                        kernel_size=residual_kernel_size,
                        dilation=dilation_base**j,
                        compress=compress,
                        true_skip=true_skip,
                        activation=activation,
                        **conv_args,
                    )
                )
            layers += [
                _activation(activation, width),
                SConv1d(width, width * 2, ratio * 2, stride=ratio, **conv_args),
            ]
            width *= 2
        if lstm_layers:
            layers.append(SLSTM(width, num_layers=lstm_layers))
        layers += [
            _activation(activation, width),
            SConv1d(width, dimension, last_kernel_size, **conv_args),
        ]
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class SEANetDecoder(nn.Module):
    """Latent frames to waveform: ``[B, dimension, F] -> [B, channels, F * hop]``."""

    def __init__(
        self,
        *,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 32,
        n_residual_layers: int = 1,
        ratios: Sequence[int] = (8, 5, 4, 2),
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        causal: bool = False,
        norm: str = "weight_norm",
        pad_mode: str = "reflect",
        true_skip: bool = False,
        compress: int = 2,
        lstm_layers: int = 2,
        trim_right_ratio: float = 1.0,
        activation: str = "elu",
    ) -> None:
        super().__init__()
        self.hop_length = math.prod(ratios)
        conv_args = dict(causal=causal, norm=norm, pad_mode=pad_mode)
        width = n_filters * 2 ** len(ratios)
        layers: list[nn.Module] = [SConv1d(dimension, width, kernel_size, **conv_args)]
        if lstm_layers:
            layers.append(SLSTM(width, num_layers=lstm_layers))
        for ratio in ratios:
            up = SConvTranspose1d(
                width,
                width // 2,
                ratio * 2,
                stride=ratio,
                causal=causal,
                norm=norm,
                trim_right_ratio=trim_right_ratio,
            )
            layers += [_activation(activation, width), up]
            width //= 2
            for j in range(n_residual_layers):
                layers.append(
                    ResnetBlock(
                        width,
                        kernel_size=residual_kernel_size,
                        dilation=dilation_base**j,
                        compress=compress,
                        true_skip=true_skip,
                        activation=activation,
                        **conv_args,
                    )
                )
        layers += [
            _activation(activation, width),
            SConv1d(width, channels, last_kernel_size, **conv_args),
        ]
        self.layers = nn.ModuleList(layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            z = layer(z)
        return z


def fold_weight_norm(module: nn.Module) -> int:
    """Replace every weight-norm parametrisation in ``module`` by its plain weight, in place.

    Inference then skips recomputing ``g * v / ||v||`` on every call. Returns the number of
    convolutions folded. The folded tensor is the one the parametrisation computes, so
    outputs are unchanged bit for bit.
    """
    folded = 0
    for sub in module.modules():
        if parametrize.is_parametrized(sub, "weight"):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)
            folded += 1
    return folded


def enable_fast_inference(module: nn.Module) -> None:
    """Switch SEANet layers of ``module`` to their inference-only fast paths, in place.

    Transposed convs get their polyphase weights (needs weight norm folded first) and the
    ELUs whose input is not reused become in-place. Training is unaffected: the fast
    paths are used only when autograd is off.
    """
    for sub in module.modules():
        if isinstance(sub, SConvTranspose1d):
            sub.enable_polyphase()
        elif isinstance(sub, (SEANetEncoder, SEANetDecoder)):
            # Top-level ELUs feed only the next conv.
            for layer in sub.layers:
                if isinstance(layer, nn.ELU):
                    layer.inplace = True
        elif isinstance(sub, ResnetBlock):
            # block[0]'s input is also the shortcut's input; block[2]'s is not reused.
            if isinstance(sub.block[2], nn.ELU):
                sub.block[2].inplace = True


def has_weight_norm(module: nn.Module) -> bool:
    """Whether any submodule still carries a weight-norm parametrisation."""
    return any(parametrize.is_parametrized(m, "weight") for m in module.modules())
