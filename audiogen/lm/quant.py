"""Low-precision LM weights for decoding on CPUs without fast bf16.

A decode step multiplies 2 x batch rows (the two CFG branches) by every weight matrix of the
LM, so on a CPU it is bound by reading the weights. Two weight formats, both with fp32
activations, residual stream, norms, attention and KV cache:

- ``fp16``: fp16 weights, widened to fp32 in registers (the product and its sums are fp32),
  through audiogen's compiled kernel for up to 2 rows and fbgemm's
  ``quantized.linear_dynamic_fp16`` beyond (:class:`Fp16Linear`). Measured on this
  project's 2-core AVX2 machine, a ``[M, 1024] x [1024, 4096]`` product through fbgemm:
  0.16 ms at 2 rows, 0.43 ms at 8, 13 ms at 256 (fp32: 1.22, 2.25, 16 ms; int8 below:
  0.27, 0.78, 29 ms), with a relative error of 2e-4 (the fp16 rounding of the weights).
  The default on x86 CPUs without native bf16 (``audiogen.pipeline.default_precision``).
- ``int8``: per-output-channel symmetric int8 (``w ~= q * scale``, ``q`` in [-127, 127])
  through ``aten._weight_int8pack_mm`` (bf16 activations for the product only) up to
  :data:`INT8_KERNEL_MAX_ROWS` rows, dequantized float GEMM beyond. Half the bytes of fp16,
  ~1% relative error per product; for CPUs without fbgemm, or where memory is short.

On other devices every product runs in float from the stored weights: correct but not fast
(GPUs decode in bf16 by default).
"""

from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn

from audiogen import native

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


@functools.cache
def fp16_weights_available() -> bool:
    """True when this torch has fbgemm's fp16-weight linear (x86 builds)."""
    try:
        packed = torch.ops.quantized.linear_prepack_fp16(torch.ones(8, 8), None)
        torch.ops.quantized.linear_dynamic_fp16(torch.ones(1, 8), packed)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    return True


#: Rows up to which :class:`Fp16Linear` uses audiogen's compiled kernel rather than fbgemm
#: (measured on a 2-core AVX2 CPU: faster at 2 rows for every shape, slower at 8).
FP16_NATIVE_MAX_ROWS = 2


@functools.cache
def _f16_kernel():
    """``audiogen/native/linear.c``'s packed-fp16 product with its signature, or None."""
    return native.function("linear", "linear_f16_packed", "ptr i64 ptr ptr i64 i64 i64", "int")


def _pack_f16(weight: torch.Tensor) -> torch.Tensor:
    """fp16 ``[N, K]`` -> ``[N/4, K/8, 4, 8]``: the native kernel's streaming layout."""
    n, k = weight.shape
    return weight.half().view(n // 4, 4, k // 8, 8).permute(0, 2, 1, 3).contiguous()


def _unpack_f16(packed: torch.Tensor) -> torch.Tensor:
    blocks, chunks, _, _ = packed.shape
    return packed.permute(0, 2, 1, 3).reshape(blocks * 4, chunks * 8)


class Fp16Linear(nn.Module):
    """``y = x @ W.T`` without bias, ``W`` stored as fp16 (CPU), fp32 products and sums.

    Two kernels: for up to :data:`FP16_NATIVE_MAX_ROWS` rows (a batch-1 decode step with
    CFG), audiogen's compiled one (``audiogen/native/linear.c``) on the weights in its
    streaming layout (2-4x fbgemm's speed for the small matrices of a small model, 1.15x for
    MusicGen-small's); for more rows, fbgemm's ``quantized.linear_dynamic_fp16`` on its own
    packed copy, made at the first such call. The weights are not in ``state_dict``; the
    module stays on the CPU; :meth:`weight` gives them widened to fp32 for other devices and
    dtypes."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        if not fp16_weights_available():
            raise RuntimeError("fp16 weights need torch's fbgemm kernels (x86 CPU builds)")
        self.out_features, self.in_features = weight.shape
        w = weight.detach().float().cpu().contiguous()
        self._fbgemm = None
        self._native = None
        if _f16_kernel() is not None and self.out_features % 4 == 0 and self.in_features % 8 == 0:
            self._native = _pack_f16(w)
        else:
            self._fbgemm = torch.ops.quantized.linear_prepack_fp16(w, None)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Fp16Linear:
        if linear.bias is not None:
            raise ValueError("Fp16Linear takes bias-free linears (MusicGen's LM has none)")
        return cls(linear.weight)

    @property
    def packed(self) -> torch.Tensor | None:
        """The fp16 weights in the compiled kernel's layout, or None (fbgemm's path)."""
        return self._native

    def weight(self) -> torch.Tensor:
        """The stored weights, widened to fp32 ``[N, K]``."""
        if self._native is not None:
            return _unpack_f16(self._native).float()
        return torch.ops.quantized.linear_unpack_fp16(self._fbgemm)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32:
            return F.linear(x, self.weight().to(device=x.device, dtype=x.dtype))
        rows = x.numel() // self.in_features
        refused = False
        if self._native is not None and rows <= FP16_NATIVE_MAX_ROWS:
            flat = x.reshape(rows, self.in_features)
            if flat.stride(1) == 1:
                out = torch.empty(rows, self.out_features)
                args = (flat.data_ptr(), flat.stride(0), self._native.data_ptr(), out.data_ptr())
                if _f16_kernel()(*args, rows, self.out_features, self.in_features) == 0:
                    return out.view(*x.shape[:-1], self.out_features)
                refused = True  # built without F16C: it would refuse every call
        if self._fbgemm is None:
            self._fbgemm = torch.ops.quantized.linear_prepack_fp16(self.weight(), None)
        if refused:
            self._native = None
        return torch.ops.quantized.linear_dynamic_fp16(x, self._fbgemm)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fp16"


LOW_PRECISION_LINEARS = {"int8": Int8Linear, "fp16": Fp16Linear}


def quantize_lm(lm: nn.Module, precision: str = "int8", *, inplace: bool = True) -> nn.Module:
    """Replace the linears a decode step reads (attention and FFN projections of every layer,
    the output heads) with :class:`Int8Linear` (``precision="int8"``) or
    :class:`Fp16Linear` (``"fp16"``). The cross-attention K/V projection runs once per
    generation and stays float. Inference only.

    ``inplace=False`` leaves ``lm`` intact and returns a copy that shares every other tensor
    with it (embeddings, norms, K/V projection), so the float model can still be saved or
    trained at the cost of the low-precision weights (a quarter or half of the fp32 size)."""
    kind = LOW_PRECISION_LINEARS[precision]
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
        setattr(parent, child, kind.from_linear(mod))
    return lm


def low_precision(lm: nn.Module) -> str | None:
    """``"int8"`` or ``"fp16"`` when ``lm``'s linears were swapped by :func:`quantize_lm`."""
    for name, kind in LOW_PRECISION_LINEARS.items():
        if any(isinstance(m, kind) for m in lm.modules()):
            return name
    return None
