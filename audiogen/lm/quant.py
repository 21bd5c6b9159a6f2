"""Weight-only int8 for decoding on CPUs without fast bf16.

A decode step multiplies 2 x batch rows (the two CFG branches) by every weight matrix of the
LM, so on a CPU it is bound by reading the weights. On this project's 2-core AVX2 machine a
``[2, 1024] x [1024, 4096]`` product took 1.66 ms in fp32 and 0.35 ms with int8 weights
(``aten._weight_int8pack_mm``, bf16 activations), 4.7x less. Weights are quantized per output
channel, symmetrically (``w ~= q * scale``, ``q`` in [-127, 127]); activations are rounded to
bf16 for the product only, the residual stream, norms, attention and KV cache stay fp32.
Products with many rows (a prompt's prefill, training) dequantize and run in float, where the
int8 kernel is slower than a float GEMM. On other devices every product dequantizes: correct
but not fast (GPUs decode in bf16 by default).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

#: Rows up to which the int8 kernel is used; measured faster than fp32 up to ~16-32 rows.
INT8_KERNEL_MAX_ROWS = 16


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, K]`` float -> (int8 ``[N, K]``, fp32 scales ``[N]``), symmetric per row."""
    w = weight.detach().float()
    scales = w.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    q = torch.round(w / scales[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.contiguous(), scales


class Int8Linear(nn.Module):
    """``y = x @ (q * scale).T`` without bias, the int8 weight and scales as buffers."""

    def __init__(self, q: torch.Tensor, scales: torch.Tensor) -> None:
        super().__init__()
        self.out_features, self.in_features = q.shape
        self.register_buffer("weight_int8", q)
        self.register_buffer("scales", scales.float())
        # The kernel takes scales in its activation dtype; kept beside the fp32 ones (which
        # the dequantized path uses) so device moves carry both.
        self.register_buffer("scales_bf16", scales.to(torch.bfloat16), persistent=False)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        if linear.bias is not None:
            raise ValueError("Int8Linear takes bias-free linears (MusicGen's LM has none)")
        return cls(*quantize_weight(linear.weight))

    def dequantized(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self.weight_int8.to(dtype) * self.scales[:, None].to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        if x.device.type == "cpu" and rows <= INT8_KERNEL_MAX_ROWS:
            flat = x.reshape(rows, self.in_features).to(torch.bfloat16)
            out = torch.ops.aten._weight_int8pack_mm(flat, self.weight_int8, self.scales_bf16)
            return out.to(x.dtype).view(*x.shape[:-1], self.out_features)
        return F.linear(x, self.dequantized(x.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_lm_int8(lm: nn.Module, *, inplace: bool = True) -> nn.Module:
    """Replace the linears a decode step reads (attention and FFN projections of every layer,
    the output heads) with :class:`Int8Linear`. The cross-attention K/V projection runs once
    per generation and stays float. Inference only.

    ``inplace=False`` leaves ``lm`` intact and returns a copy that shares every other tensor
    with it (embeddings, norms, K/V projection), so the float model can still be saved or
    trained at the cost of the int8 weights (a quarter of the fp32 size)."""
    if not inplace:
        shared = {id(t): t for t in (*lm.parameters(), *lm.buffers())}
        lm = copy.deepcopy(lm, memo=shared)
    targets = [
        (name, mod)
        for name, mod in lm.named_modules()
        if isinstance(mod, nn.Linear) and not name.endswith("cross_attn.kv_proj")
    ]
    for name, mod in targets:
        parent_name, _, child = name.rpartition(".")
        parent = lm.get_submodule(parent_name) if parent_name else lm
        setattr(parent, child, Int8Linear.from_linear(mod))
    return lm


def is_int8(lm: nn.Module) -> bool:
    return any(isinstance(m, Int8Linear) for m in lm.modules())
