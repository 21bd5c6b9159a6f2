"""Low-precision decoding weights (int8, fp16): quantization error bounds, the product
paths, the LM swap, the default-precision rule, and the generator / CLI options."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from audiogen import pipeline
from audiogen.errors import UserError
from audiogen.lm import Conditions, MusicLM, SamplingParams, generate, quant, tiny_config
from audiogen.lm.quant import (
    INT8_KERNEL_MAX_ROWS,
    Fp16Linear,
    Int8Linear,
    fp16_weights_available,
    low_precision,
    quantize_lm,
)

needs_fbgemm = pytest.mark.skipif(
    not fp16_weights_available(), reason="fp16 weights need torch's fbgemm (x86)"
)


def test_quantize_weight_error_within_half_a_step():
    g = torch.Generator().manual_seed(0)
    lin = nn.Linear(64, 48, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(48, 64, generator=g) * torch.logspace(-3, 1, 48)[:, None])
    q = Int8Linear.from_linear(lin)
    assert q.weight_int8.dtype == torch.int8
    assert int(q.weight_int8.abs().max()) == 127  # each row uses its full range
    err = (q.dequantized() - lin.weight).abs()
    assert bool((err <= q.scales[:, None] / 2 + 1e-7).all())


@pytest.mark.parametrize("rows", [1, 2, INT8_KERNEL_MAX_ROWS, INT8_KERNEL_MAX_ROWS + 1, 64])
def test_int8_linear_matches_its_dequantized_weights(rows):
    """Both paths (the int8 kernel for few rows, dequantize + float GEMM for many) compute
    x @ dequantized.T; the kernel rounds activations and output to bf16."""
    g = torch.Generator().manual_seed(1)
    lin = nn.Linear(96, 80, bias=False)
    q = Int8Linear.from_linear(lin)
    x = torch.randn(rows, 96, generator=g)
    exact = F.linear(x.double(), q.dequantized(torch.float64))
    out = q(x)
    assert out.dtype == torch.float32 and out.shape == (rows, 80)
    tol = 0.02 * exact.abs().max() if rows <= INT8_KERNEL_MAX_ROWS else 1e-5
    assert float((out.double() - exact).abs().max()) <= tol
    # 3-d input keeps its leading shape
    assert q(x.view(1, rows, 96)).shape == (1, rows, 80)


def _lm():
    torch.manual_seed(0)
    return MusicLM(config=tiny_config(dim=64, num_heads=4, ffn_dim=128, cardinality=64)).eval()


@needs_fbgemm
@pytest.mark.parametrize("rows", [1, 2, 8, 64])
def test_fp16_linear_is_the_fp16_rounded_weight_in_fp32(rows):
    g = torch.Generator().manual_seed(3)
    lin = nn.Linear(96, 80, bias=False)
    with torch.no_grad():
        lin.weight.mul_(torch.logspace(-2, 1, 80)[:, None])
    f = Fp16Linear.from_linear(lin)
    w16 = lin.weight.detach().half().double()
    assert torch.equal(f.weight().double(), w16)  # stores exactly the fp16 rounding
    x = torch.randn(2, rows, 96, generator=g)
    exact = F.linear(x.double(), w16)
    out = f(x)
    assert out.dtype == torch.float32 and out.shape == (2, rows, 80)
    # fp32 products and sums: far tighter than int8 (or bf16 activations) could be
    assert float((out.double() - exact).abs().max()) <= 1e-5 * float(exact.abs().max())
    # other dtypes take the float path from the unpacked weights
    assert f(x.double()).dtype == torch.float64
    assert f.state_dict() == {}
    assert f._native is not None  # 80 x 96 fits the compiled kernel's layout
    with pytest.raises(ValueError, match="bias-free"):
        Fp16Linear.from_linear(nn.Linear(4, 4))


@needs_fbgemm
def test_fp16_linear_off_the_kernel_layout_uses_fbgemm():
    lin = nn.Linear(90, 30, bias=False)  # 30 rows, 90 columns: not 4 x 8 tiles
    f = Fp16Linear.from_linear(lin)
    assert f._native is None
    x = torch.randn(2, 90)
    torch.testing.assert_close(f(x), F.linear(x, lin.weight.detach().half().float()))


@pytest.mark.parametrize("precision", ["int8", pytest.param("fp16", marks=needs_fbgemm)])
def test_quantize_lm_swaps_decode_linears_and_stays_close(precision):
    lm = _lm()
    q = quantize_lm(copy.deepcopy(lm), precision)
    assert low_precision(q) == precision and low_precision(lm) is None
    kind = {"int8": "Int8Linear", "fp16": "Fp16Linear"}[precision]
    kinds = {n: type(m).__name__ for n, m in q.named_modules()}
    assert kinds["heads"] == kind
    assert kinds["layers.0.ffn.fc1"] == kind
    assert kinds["layers.0.self_attn.in_proj"] == kind
    assert kinds["layers.0.cross_attn.kv_proj"] == "Linear"  # once per generation: float
    assert q.compute_dtype == torch.float32
    g = torch.Generator().manual_seed(2)
    seq = torch.randint(0, 64, (2, 4, 20), generator=g)
    cross = torch.randn(2, 5, 64, generator=g)
    with torch.no_grad():
        ref = lm(seq, cross=cross).logits
        got = q(seq, cross=cross).logits  # 20 rows x 2: int8's dequantized path
    tol = {"int8": 0.05, "fp16": 0.002}[precision]
    assert float((got - ref).abs().max()) < tol * float(ref.std()) + 1e-4


@needs_fbgemm
def test_fp16_generation_equals_fp32_greedy():
    lm = _lm()
    q = quantize_lm(lm, "fp16", inplace=False)
    cond = Conditions(cross=torch.randn(2, 5, 64), cross_mask=torch.ones(2, 5, dtype=torch.bool))
    greedy = SamplingParams(top_k=1)
    a = generate(lm, num_frames=12, cond=cond, params=greedy).codes
    b = generate(q, num_frames=12, cond=cond, params=greedy).codes
    assert torch.equal(a, b)


def test_int8_generation_runs_and_mostly_agrees_with_fp32():
    lm = _lm()
    q = quantize_lm(copy.deepcopy(lm), "int8")
    cond = Conditions(cross=torch.randn(2, 5, 64), cross_mask=torch.ones(2, 5, dtype=torch.bool))
    greedy = SamplingParams(top_k=1)
    a = generate(lm, num_frames=12, cond=cond, params=greedy).codes
    b = generate(q, num_frames=12, cond=cond, params=greedy).codes
    assert a.shape == b.shape
    assert float((a == b).float().mean()) > 0.5


def test_default_precision_rule(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(pipeline, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(quant, "fp16_weights_available", lambda: True)
    assert pipeline.default_precision(cpu) == "fp16"
    assert pipeline.resolve_precision(None, cpu) == "fp16"
    monkeypatch.setattr(quant, "fp16_weights_available", lambda: False)
    assert pipeline.default_precision(cpu) == "int8"
    with pytest.raises(UserError, match="fbgemm"):
        pipeline.resolve_precision("fp16", cpu)
    assert pipeline.default_precision(torch.device("cuda")) == "bf16"
    with pytest.raises(UserError, match="CPU format"):
        pipeline.resolve_precision(torch.float16, torch.device("cuda"))
    monkeypatch.setattr(pipeline, "cpu_has_native_bf16", lambda: True)
    assert pipeline.default_precision(cpu) == "bf16"
    assert pipeline.resolve_precision(torch.float32, cpu) == "fp32"
    assert pipeline.resolve_precision("bfloat16", cpu) == "bf16"
    with pytest.raises(UserError, match="unknown LM precision 'int4'"):
        pipeline.resolve_precision("int4", cpu)


@pytest.mark.parametrize("precision", ["int8", pytest.param("fp16", marks=needs_fbgemm)])
def test_generator_low_precision_option(tmp_path, precision):
    gen = pipeline.MusicGenerator.load("tiny", device="cpu", dtype=precision)
    assert gen.precision == precision and gen.dtype == torch.float32
    assert low_precision(gen.decode_lm) == precision and low_precision(gen.model.lm) is None
    # The low-precision copy shares everything but the quantized weights with the float model.
    assert gen.decode_lm.embed[0].weight is gen.model.lm.embed[0].weight
    gen.set_generation_params(duration=0.3)
    wav = gen.generate(["an Irish reel on fiddle"], seed=0)
    assert wav.shape[0] == 1 and bool(torch.isfinite(wav).all())
    # Saving writes the float weights, unchanged.
    gen.save(tmp_path / "out")
    again = pipeline.MusicGenerator.load(tmp_path / "out", device="cpu", dtype="fp32")
    ref = pipeline.MusicGenerator.load("tiny", device="cpu", dtype="fp32")
    for (name, a), (_, b) in zip(
        again.model.lm.state_dict().items(), ref.model.lm.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
