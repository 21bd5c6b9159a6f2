"""Convolution wrappers with EnCodec's padding rules, and the LSTM wrapper.

Padding follows EnCodec so that imported weights give the same numbers:

- the input of a strided conv is padded on the right so that the last window is full
  (``extra_padding``), which makes ``frames = ceil(T / hop)`` and lets the decoder rebuild
  at least ``T`` samples;
- causal convs put all fixed padding on the left, non-causal ones split it, the extra
  sample of an odd split going left;
- reflect padding of an input shorter than the pad first appends zeros (reflection needs
  ``length > pad``) and cuts them off again afterwards.

A wrapper holds the torch conv as ``conv`` and an optional ``GroupNorm`` as ``norm``, the
names HF transformers uses, so weight import is a rename.
"""

from __future__ import annotations

import math
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from audiogen import native

NORMS = ("weight_norm", "time_group_norm", "none")


def extra_padding(length: int, *, kernel_size: int, stride: int, padding_total: int) -> int:
    """Right padding so that a strided conv's last window is full (EnCodec's rule).

    ``kernel_size`` is the effective (dilated) kernel size.
    """
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return ideal_length - length


def pad1d(x: torch.Tensor, left: int, right: int, *, mode: str = "reflect") -> torch.Tensor:
    """Pad the last axis of ``x [..., T]``; reflect works even when ``T <= pad``.

    No padding returns ``x`` itself (``F.pad`` would copy it: a full pass over the input of
    every 1x1 conv)."""
    if left == 0 and right == 0:
        return x
    if mode != "reflect":
        return F.pad(x, (left, right), mode=mode)
    length = x.shape[-1]
    max_pad = max(left, right)
    zeros = 0
    if length <= max_pad:
        # Reflection needs more samples than the pad: append zeros, reflect, drop them.
        zeros = max_pad - length + 1
        x = F.pad(x, (0, zeros))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - zeros]


def _check_norm(norm: str, causal: bool) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if norm == "time_group_norm" and causal:
        # GroupNorm over time looks at the whole signal, so it cannot be causal.
        raise ValueError("time_group_norm cannot be used with causal convolutions")


def _few_outputs_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int, n: int
) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, padding=padding)[..., :n]`` for a few output channels.

    oneDNN is slow for a conv with one or two output channels (a decoder's last layer: 64
    channels x 320k samples to 1 took 62 ms on a 2-core AVX2 CPU). As one matrix product
    ``[O * K, C] x [C, T]`` (every tap's contribution at every input sample) and K shifted
    adds it is memory-bound instead. Stride 1, no dilation.
    """
    b, c, t = x.shape
    out, _, k = weight.shape
    z = torch.matmul(weight.permute(0, 2, 1).reshape(out * k, c), x).view(b, out, k, t)
    y = x.new_zeros(b, out, n) if bias is None else bias.view(1, out, 1).repeat(b, 1, n)
    for tap in range(k):
        # output i reads input i - padding + tap; taps outside [0, t) see zero padding
        lo, hi = max(0, padding - tap), min(n, t + padding - tap)
        if lo < hi:
            y[..., lo:hi] += z[:, :, tap, lo - padding + tap : hi - padding + tap]
    return y


class SConv1d(nn.Module):
    """Conv1d with EnCodec padding and normalisation: ``[B, C_in, T] -> [B, C_out, ceil(T/s)]``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        causal: bool = False,
        norm: str = "weight_norm",
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        _check_norm(norm, causal)
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation)
        self.conv = weight_norm(conv) if norm == "weight_norm" else conv
        if norm == "time_group_norm":
            self.norm = nn.GroupNorm(1, out_channels)
        self.causal = causal
        self.pad_mode = pad_mode
        self.stride = stride
        self.effective_kernel = (kernel_size - 1) * dilation + 1
        self.padding_total = self.effective_kernel - stride

    def _pads(self, length: int) -> tuple[int, int]:
        """(left, right) reflect padding of an input of ``length`` samples, extra included."""
        extra = extra_padding(
            length,
            kernel_size=self.effective_kernel,
            stride=self.stride,
            padding_total=self.padding_total,
        )
        if self.causal:
            return self.padding_total, extra
        right = self.padding_total // 2
        return self.padding_total - right, right + extra

    def _conv_edges_fixed(self, x: torch.Tensor, left: int, right: int) -> torch.Tensor:
        """Inference-only reflect-padded conv without materialising the padded input.

        The conv runs with its own zero padding (``left`` on both sides), then the few
        outputs per edge whose window saw zeros are recomputed from a small reflect-padded
        slice. This skips one full copy of the input, which costs as much as a small conv
        at audio rate. Any stride; needs ``right <= left``.
        """
        conv = self.conv
        s, k, t = self.stride, self.effective_kernel, x.shape[-1]
        n = (t + left + right - k) // s + 1  # outputs of the reflect-padded conv
        if conv.weight.shape[0] <= 4 and s == 1 and conv.dilation == (1,):
            y = _few_outputs_conv(x, conv.weight, conv.bias, left, n)
        else:
            y = F.conv1d(x, conv.weight, conv.bias, stride=s, padding=left, dilation=conv.dilation)
            y = y[..., :n]

        def fix(first: int, last: int) -> None:
            """Recompute outputs [first, last) from their reflect-padded input slice."""
            start, end = first * s - left, (last - 1) * s + k - left  # in x's coordinates
            pad_l, pad_r = max(-start, 0), max(end - t, 0)
            lo, hi, skip = max(start, 0), min(end, t), 0
            # Reflection needs more samples than its pad: widen the slice, by whole strides
            # on the left so the windows stay aligned, and drop the extra outputs.
            if pad_r and hi - lo <= pad_r:
                skip = -(-(pad_r + 1 - (hi - lo)) // s)
                lo -= skip * s
            if pad_l and hi - lo <= pad_l:
                hi = min(t, lo + pad_l + 1)
            piece = pad1d(x[..., lo:hi], pad_l, pad_r)
            out = F.conv1d(piece, conv.weight, conv.bias, stride=s, dilation=conv.dilation)
            y[..., first:last] = out[..., skip : skip + last - first]

        head = min(n, -(-left // s))  # windows that start before sample 0
        tail = max(head, (t + left - k) // s + 1)  # first window that ends after sample t
        if head:
            fix(0, head)
        if tail < n:
            fix(tail, n)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self._pads(x.shape[-1])
        if (
            left > 0
            and right <= left
            and self.pad_mode == "reflect"
            and x.shape[-1] > 4 * (self.effective_kernel + left)
            and not torch.is_grad_enabled()
        ):
            y = self._conv_edges_fixed(x, left, right)
            return self.norm(y) if hasattr(self, "norm") else y
        x = pad1d(x, left, right, mode=self.pad_mode)
        if self.effective_kernel == 1 and self.stride == 1:
            # A 1x1 conv is a batched matrix product; torch's conv takes a slow kernel for
            # it on CPU, baddbmm gives the same numbers about 2x faster.
            w = self.conv.weight
            w = w.view(w.shape[0], w.shape[1]).expand(x.shape[0], -1, -1)
            x = torch.baddbmm(self.conv.bias[None, :, None], w, x)
        else:
            x = self.conv(x)
        if hasattr(self, "norm"):
            x = self.norm(x)
        return x


class SConvTranspose1d(nn.Module):
    """Transposed conv that trims EnCodec's fixed padding: ``[B, C_in, F] -> [B, C_out, F*s]``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        causal: bool = False,
        norm: str = "weight_norm",
        trim_right_ratio: float = 1.0,
    ) -> None:
        super().__init__()
        _check_norm(norm, causal)
        if not causal and trim_right_ratio != 1.0:
            raise ValueError("trim_right_ratio != 1 only makes sense for causal convolutions")
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride)
        self.conv = weight_norm(conv) if norm == "weight_norm" else conv
        if norm == "time_group_norm":
            self.norm = nn.GroupNorm(1, out_channels)
        padding_total = kernel_size - stride
        # Only the fixed padding is trimmed here; the encoder's extra padding is removed
        # at the very end by cutting the output to the input length.
        if causal:
            self.trim_right = math.ceil(padding_total * trim_right_ratio)
        else:
            self.trim_right = padding_total // 2
        self.trim_left = padding_total - self.trim_right

    def enable_polyphase(self) -> bool:
        """Precompute the polyphase form of the (folded) weight for fast inference.

        A transposed conv with ``kernel = n * stride`` equals an ordinary ``n``-tap conv
        producing ``stride`` output phases per input frame, interleaved in time; torch's
        ordinary conv is 1.4-2.5x faster on CPU. Only valid while the weights are frozen,
        so :meth:`Codec.prepare_for_inference` calls it after folding weight norm.
        Returns whether the fast path is now active.
        """
        conv = self.conv
        (k,), (s,) = conv.kernel_size, conv.stride
        if parametrize.is_parametrized(conv, "weight") or k % s or conv.groups != 1:
            return False
        n = k // s
        w = conv.weight.detach()  # [C_in, C_out, n*s]
        c_in, c_out, _ = w.shape
        # Tap q of the new conv sees x[m - (n-1) + q], i.e. original tap r + (n-1-q)*s.
        taps = w.view(c_in, c_out, n, s).flip(2)  # [C_in, C_out, q, r]
        poly = taps.permute(1, 3, 0, 2).reshape(c_out * s, c_in, n).contiguous()
        self.register_buffer("_poly_weight", poly, persistent=False)
        # Every phase of output channel o shares o's bias; the conv adds it for free.
        self.register_buffer(
            "_poly_bias", conv.bias.detach().repeat_interleave(s), persistent=False
        )
        return True

    def _polyphase(self, x: torch.Tensor) -> torch.Tensor:
        poly = self._poly_weight
        s = self.conv.stride[0]
        n = poly.shape[-1]
        y = F.conv1d(x, poly, self._poly_bias, padding=n - 1)  # [B, C_out*s, F+n-1]
        b, cs, frames = y.shape
        # Rows are (channel, phase): interleave the phases along time.
        return y.view(b, cs // s, s, frames).transpose(2, 3).reshape(b, cs // s, frames * s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "_poly_weight") and not torch.is_grad_enabled():
            y = self._polyphase(x)
        else:
            y = self.conv(x)
        if hasattr(self, "norm"):
            y = self.norm(y)
        return y[..., self.trim_left : y.shape[-1] - self.trim_right]


@cache
def _lstm_kernel():
    """``audiogen/native/lstm.c``'s fp32 recurrence with its signature, or None."""
    return native.function("lstm", "lstm_f32", "ptr ptr ptr ptr ptr i64 i64 i64", "int")


def lstm_inference(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor | None:
    """``lstm(x)[0]`` for fp32 CPU ``x`` ``[T, B, C]`` by the compiled recurrence, or None.

    Per layer, torch computes the input projection of all steps in one product and the
    kernel runs the steps (recurrent product, gates, cell update) in one call, where
    ``nn.LSTM`` launches work per step. Taken where it was measured faster on a 2-core AVX2
    CPU: batch <= 2 at any width (width 1024, batch 1: 143 vs 284 us per step and layer;
    width 512: 80 vs 71-92 us), and width >= 1024 at any batch (batch 4: 478 vs 1290 us);
    at width 512 and batch 4-8 torch's was faster. Outputs equal ``nn.LSTM``'s within
    float rounding (3e-7).
    """
    fn = _lstm_kernel()
    steps, batch, _ = x.shape
    if (
        fn is None
        or x.dtype != torch.float32
        or x.device.type != "cpu"
        or lstm.bias is False
        or lstm.bidirectional
        or lstm.proj_size
        or lstm.batch_first
        or not (batch <= 2 or lstm.hidden_size >= 1024)
        or batch > 64
    ):
        return None
    hidden = lstm.hidden_size
    inp = x
    for layer in range(lstm.num_layers):
        w_ih = getattr(lstm, f"weight_ih_l{layer}")
        w_hh = getattr(lstm, f"weight_hh_l{layer}").contiguous()
        bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        pre = torch.addmm(bias, inp.reshape(steps * batch, -1), w_ih.t()).contiguous()
        h0 = torch.zeros(batch, hidden)
        c = torch.zeros(batch, hidden)
        out = torch.empty(steps, batch, hidden)
        ptrs = (t.data_ptr() for t in (pre, w_hh, h0, c, out))
        if fn(*ptrs, steps, batch, hidden):
            return None
        inp = out
    return inp


@cache
def _elu_kernel():
    """``audiogen/native/pointwise.c``'s ELU with its signature, or None."""
    return native.function("pointwise", "elu_f32", "ptr i64 ptr i64 i64 i64 f32")


class ELU(nn.ELU):
    """``nn.ELU`` whose inference on fp32 CPU ``[B, C, T]`` runs the compiled, vectorised
    kernel (torch evaluates ``expm1`` per element: 64 x 320k samples took 25-75 ms against
    7 ms, within 1.5e-7 of torch's values). Rows may be strided (a time slice of a longer
    tensor), samples must be contiguous."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = _elu_kernel()
        if (
            fn is None
            or x.dtype != torch.float32
            or x.device.type != "cpu"
            or x.dim() != 3
            or x.stride(2) != 1
            or x.stride(1) < x.shape[2]  # overlapping rows (an expanded tensor)
            or x.stride(0) != x.shape[1] * x.stride(1)
            or (torch.is_grad_enabled() and x.requires_grad)
        ):
            return super().forward(x)
        b, c, t = x.shape
        out = x if self.inplace else torch.empty_like(x, memory_format=torch.contiguous_format)
        fn(x.data_ptr(), x.stride(1), out.data_ptr(), out.stride(1), b * c, t, self.alpha)
        return out


class Snake(nn.Module):
    """Periodic activation ``x + sin(alpha * x)^2 / alpha`` with a learned ``alpha`` per
    channel (Ziyin et al. 2020; the vocoders BigVGAN and DAC use it for its bias towards
    periodic signals). An alternative to SEANet's ELU (``CodecConfig.activation``); the
    EnCodec peers have no such layer, so a codec using it has no peer to convert to."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.to(x.dtype)
        return x + torch.sin(alpha * x).pow(2) / (alpha + 1e-9)


ACTIVATIONS = ("elu", "snake")


def activation(name: str, channels: int) -> nn.Module:
    """The activation layer ``name`` (one of :data:`ACTIVATIONS`) for ``channels`` channels."""
    if name == "elu":
        return ELU()
    if name == "snake":
        return Snake(channels)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


class SLSTM(nn.Module):
    """Unidirectional LSTM over time with a skip connection: ``[B, C, T] -> [B, C, T]``.

    Without autograd, CPU fp32 runs take the compiled recurrence (:func:`lstm_inference`)."""

    def __init__(self, dim: int, *, num_layers: int = 2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(2, 0, 1)  # [T, B, C]: nn.LSTM's default layout
        y = None
        if not torch.is_grad_enabled() or not (
            x.requires_grad or any(p.requires_grad for p in self.lstm.parameters())
        ):  # the kernel has no backward
            y = lstm_inference(self.lstm, x)
        if y is None:
            y, _ = self.lstm(x)
        return (y + x).permute(1, 2, 0)
