"""A whole decode step of the decoder layers in one compiled call (CPU, fp16 weights).

A decode step of a small LM on a CPU is mostly interpreter and op-dispatch time: the tiny
model's 4 layers issue ~100 torch ops and kernel calls per step, each a few microseconds of
Python around a few microseconds of arithmetic. :class:`FusedDecoder` hands the layers'
tensors to ``audiogen/native/decode.c`` once per generation, and every step then runs all
layers (norms, the fp16 products of :class:`~audiogen.lm.quant.Fp16Linear`, the KV-cache
write, self- and cross-attention, GELU, residuals) in one call. It computes what
:meth:`MusicLM.backbone` computes on the same weights, in fp32 with a different summation
order.

Used by :func:`audiogen.lm.generate.generate` when the LM decodes with fp16 weights
(``quantize_lm(lm, "fp16")``, the default on x86 CPUs without native bf16), the kernel
built, and the shapes fit; otherwise generation takes the module path. ``AUDIOGEN_NATIVE=0``
turns it off with the other kernels.
"""

from __future__ import annotations

import ctypes
from functools import cache

import torch

from audiogen import native

from .quant import Fp16Linear
from .transformer import CrossKV, KVCache

_P = ctypes.c_void_p
_I = ctypes.c_int64


class _Layer(ctypes.Structure):
    _fields_ = [
        *((n, _P) for n in ("ln_self_w", "ln_self_b", "ln_cross_w", "ln_cross_b")),
        *((n, _P) for n in ("ln_ffn_w", "ln_ffn_b", "w_qkv", "w_out", "w_cross_q")),
        *((n, _P) for n in ("w_cross_out", "w_fc1", "w_fc2", "k_cache", "v_cache")),
        *((n, _P) for n in ("cross_k", "cross_v")),
        *((n, _I) for n in ("ck_b", "ck_h", "ck_l", "cv_b", "cv_h", "cv_l")),
    ]


class _Plan(ctypes.Structure):
    _fields_ = [
        *((n, _I) for n in ("rows", "dim", "heads", "ffn", "layers", "max_len")),
        ("cross_len", _I),
        ("mask_b", _I),
        ("cross_mask", _P),
        ("scratch", _P),
        ("eps", ctypes.c_double),
    ]


@cache
def _kernels():
    """(decode_step_f16, decode_scratch_floats) from ``decode.c``, or None."""
    lib = native.load("decode")
    if lib is None:
        return None
    step = native.function("decode", "decode_step_f16", "ptr ptr ptr i64", "int")
    scratch = lib.decode_scratch_floats
    scratch.argtypes = [_I] * 6
    scratch.restype = _I
    return step, scratch


def _f32(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype == torch.float32


class FusedDecoder:
    """The decoder layers of one generation, ready for single-position steps.

    Build with :meth:`build` (None when the LM or its inputs do not fit the kernel); then
    ``decoder(x, pos)`` takes the step's inputs ``[rows, 1, dim]`` (embeddings plus the
    position's sinusoid, fp32) and returns the last layer's output before the final norm,
    having written each layer's keys and values at ``pos`` in ``cache``.
    """

    def __init__(self, step, plan: _Plan, layers, keep: list) -> None:
        self._step = step
        self._plan = plan
        self._layers = layers
        self._keep = keep  # every tensor the plan points into
        self._plan_ref = ctypes.byref(plan)
        self._max_len = plan.max_len
        self._shape = (plan.rows, 1, plan.dim)

    @classmethod
    def build(
        cls, lm: torch.nn.Module, cache: KVCache, cross_kv: CrossKV | None, rows: int
    ) -> FusedDecoder | None:
        kernels = _kernels()
        if kernels is None:
            return None
        step, scratch_floats = kernels
        cfg = lm.config
        dim, heads = cfg.dim, cfg.num_heads
        if lm.training or dim % heads or not (_f32(cache.k) and _f32(cache.v)):
            return None  # training applies dropout; the kernel has none
        shape = (len(lm.layers), rows, heads, cache.max_len, dim // heads)
        if tuple(cache.k.shape) != shape or tuple(cache.v.shape) != shape:
            return None
        if not (cache.k.is_contiguous() and cache.v.is_contiguous()):
            return None
        if cross_kv is not None and (cross_kv.k is None or cross_kv.v is None):
            return None  # the lazy (training) form
        cross_len = cross_kv.k[0].shape[2] if cross_kv is not None else 0
        mask = cross_kv.mask if cross_kv is not None else None
        if mask is not None:
            if not _f32(mask) or mask.dim() != 4 or mask.shape[1] * mask.shape[2] != 1:
                return None
            if mask.stride(-1) != 1 or mask.shape[0] not in (1, rows):
                return None
            if mask.shape[-1] != cross_len:
                return None
        keep: list = [mask]
        structs = []
        eps = None
        ffn = None
        for i, layer in enumerate(lm.layers):
            norms = [layer.norm_self, layer.norm_ffn]
            linears = [layer.self_attn.in_proj, layer.self_attn.out_proj, layer.ffn.fc1]
            linears.append(layer.ffn.fc2)
            cross = layer.cross_attn is not None and cross_kv is not None
            if cross:
                norms.append(layer.norm_cross)
                linears += [layer.cross_attn.q_proj, layer.cross_attn.out_proj]
            if not all(isinstance(m, Fp16Linear) and m.packed is not None for m in linears):
                return None
            for n in norms:
                if n.weight is None or n.bias is None or not (_f32(n.weight) and _f32(n.bias)):
                    return None
                if eps is not None and n.eps != eps:
                    return None
                eps = n.eps
            if ffn is not None and layer.ffn.fc1.out_features != ffn:
                return None  # one scratch size serves every layer
            ffn = layer.ffn.fc1.out_features
            fields = dict(
                ln_self_w=layer.norm_self.weight.data_ptr(),
                ln_self_b=layer.norm_self.bias.data_ptr(),
                ln_ffn_w=layer.norm_ffn.weight.data_ptr(),
                ln_ffn_b=layer.norm_ffn.bias.data_ptr(),
                w_qkv=layer.self_attn.in_proj.packed.data_ptr(),
                w_out=layer.self_attn.out_proj.packed.data_ptr(),
                w_fc1=layer.ffn.fc1.packed.data_ptr(),
                w_fc2=layer.ffn.fc2.packed.data_ptr(),
                k_cache=cache.k_layers[i].data_ptr(),
                v_cache=cache.v_layers[i].data_ptr(),
            )
            if cross:
                k, v = cross_kv.k[i], cross_kv.v[i]
                if not (_f32(k) and _f32(v)) or k.stride(-1) != 1 or v.stride(-1) != 1:
                    return None
                kv_shape = (rows, heads, cross_len, dim // heads)
                if tuple(k.shape) != kv_shape or tuple(v.shape) != kv_shape:
                    return None
                keep += [k, v]
                fields.update(
                    ln_cross_w=layer.norm_cross.weight.data_ptr(),
                    ln_cross_b=layer.norm_cross.bias.data_ptr(),
                    w_cross_q=layer.cross_attn.q_proj.packed.data_ptr(),
                    w_cross_out=layer.cross_attn.out_proj.packed.data_ptr(),
                    cross_k=k.data_ptr(),
                    cross_v=v.data_ptr(),
                    ck_b=k.stride(0), ck_h=k.stride(1), ck_l=k.stride(2),
                    cv_b=v.stride(0), cv_h=v.stride(1), cv_l=v.stride(2),
                )  # fmt: skip
            structs.append(_Layer(**fields))
        if not structs:
            return None
        n_scratch = scratch_floats(rows, dim, heads, ffn, cache.max_len, cross_len)
        scratch = torch.empty(n_scratch)
        keep.append(scratch)
        layers = (_Layer * len(structs))(*structs)
        plan = _Plan(
            rows=rows,
            dim=dim,
            heads=heads,
            ffn=ffn,
            layers=len(structs),
            max_len=cache.max_len,
            cross_len=cross_len,
            mask_b=0 if mask is None or mask.shape[0] == 1 else mask.stride(0),
            cross_mask=None if mask is None else mask.data_ptr(),
            scratch=scratch.data_ptr(),
            eps=float(eps),
        )
        return cls(step, plan, layers, keep)

    def __call__(self, x: torch.Tensor, pos: int) -> torch.Tensor | None:
        """x ``[rows, 1, dim]`` fp32 -> ``[rows, 1, dim]``; None when the kernel refuses
        (a CPU without AVX2/F16C), and the caller runs the layers itself."""
        if not 0 <= pos < self._max_len:
            raise IndexError(f"decode position {pos} outside the cache ({self._max_len})")
        if x.dtype != torch.float32 or tuple(x.shape) != self._shape:
            return None
        out = x.clone(memory_format=torch.contiguous_format)  # the kernel writes in place
        if self._step(self._plan_ref, self._layers, out.data_ptr(), pos):
            return None
        return out
