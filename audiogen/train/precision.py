"""Precision modes: fp32, bf16/fp16 autocast, and pure bf16 (no fp32 master weights).

| mode            | params / grads / Adam state | forward compute        | notes                 |
|-----------------|-----------------------------|------------------------|-----------------------|
| fp32            | fp32                        | fp32                   | reference             |
| bf16-autocast   | fp32                        | bf16 where safe        | CPU or GPU            |
| fp16-autocast   | fp32                        | fp16 where safe        | GPU only, grad scaler |
| bf16-pure       | bf16                        | bf16                   | pair with SR AdamW    |
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from audiogen.errors import UserError

MODES = ("fp32", "bf16-autocast", "fp16-autocast", "bf16-pure")


@dataclass(frozen=True)
class PrecisionPolicy:
    """How a precision mode stores parameters and runs the forward pass."""

    mode: str
    param_dtype: torch.dtype  # dtype of parameters, gradients and optimizer state
    autocast_dtype: torch.dtype | None  # None: no autocast region
    device_type: str  # "cpu" or "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for the forward pass and loss (a no-op without autocast)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.autocast_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A loss scaler for fp16 autocast (fp16 gradients underflow without it), else None."""
        if self.mode != "fp16-autocast":
            return None
        return torch.amp.GradScaler(self.device_type)

    def cast_input(self, x: torch.Tensor) -> torch.Tensor:
        """Floating-point inputs follow the parameter dtype in pure modes; others untouched."""
        if x.is_floating_point() and self.param_dtype != torch.float32:
            return x.to(self.param_dtype)
        return x


def resolve_precision(mode: str, device: torch.device) -> PrecisionPolicy:
    """The policy for ``mode`` on ``device``; fp16 autocast on CPU is a UserError."""
    if mode not in MODES:
        raise UserError(f"unknown precision {mode!r}; choose one of {', '.join(MODES)}")
    device_type = device.type
    if mode == "fp16-autocast" and device_type != "cuda":
        raise UserError("precision 'fp16-autocast' needs a CUDA device; use bf16-autocast on CPU")
    if mode == "fp32":
        return PrecisionPolicy(mode, torch.float32, None, device_type)
    if mode == "bf16-autocast":
        return PrecisionPolicy(mode, torch.float32, torch.bfloat16, device_type)
    if mode == "fp16-autocast":
        return PrecisionPolicy(mode, torch.float32, torch.float16, device_type)
    return PrecisionPolicy(mode, torch.bfloat16, None, device_type)
