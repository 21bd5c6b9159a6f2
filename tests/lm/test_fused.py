"""The fused decode step (``audiogen/native/decode.c`` via :class:`FusedDecoder`): it equals
the module path layer for layer, step after step, and in whole generations; it declines what
it cannot run."""

from __future__ import annotations

import importlib

import pytest
import torch

from audiogen.lm import Conditions, MusicLM, SamplingParams, generate, tiny_config
from audiogen.lm.fused import FusedDecoder
from audiogen.lm.quant import fp16_weights_available, quantize_lm
from audiogen.lm.transformer import KVCache

pytestmark = pytest.mark.skipif(
    not fp16_weights_available(), reason="fp16 weights need torch's fbgemm (x86)"
)
generate_module = importlib.import_module("audiogen.lm.generate")

DIM, HEADS = 64, 4


def _lm(cross: bool = True) -> MusicLM:
    torch.manual_seed(0)
    cfg = tiny_config(
        dim=DIM, num_heads=HEADS, ffn_dim=128, num_layers=3, cardinality=64, cross_attention=cross
    )
    lm = MusicLM(config=cfg).eval()
    with torch.no_grad():  # norms away from ones/zeros, so a swapped weight or bias shows
        for m in lm.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
    return quantize_lm(lm, "fp16", inplace=False)


def _cache(rows: int, max_len: int = 16) -> KVCache:
    return KVCache(
        num_layers=3,
        batch=rows,
        num_heads=HEADS,
        head_dim=DIM // HEADS,
        max_len=max_len,
        dtype=torch.float32,
        device="cpu",
    )


def _cross(lm: MusicLM, rows: int):
    g = torch.Generator().manual_seed(5)
    cross = torch.randn(rows, 6, DIM, generator=g)
    mask = torch.ones(rows, 6, dtype=torch.bool)
    mask[1, 4:] = False  # a shorter prompt
    mask[rows - 1] = False  # the CFG null condition: no key at all
    return lm.cross_kv(cross, mask)


@pytest.mark.parametrize("cross", [True, False])
def test_steps_equal_the_module_layers(cross):
    lm = _lm(cross)
    rows = 4
    ckv = _cross(lm, rows) if cross else None
    ours, theirs = _cache(rows), _cache(rows)
    fused = FusedDecoder.build(lm, ours, ckv, rows)
    assert fused is not None
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        prefix = torch.randn(rows, 5, DIM, generator=g)  # positions 0..4 by the module path
        for cache in (ours, theirs):
            lm.backbone(prefix, start=0, cache=cache, cross_kv=ckv)
        for pos in range(5, 12):  # each step attends to the keys the steps before wrote
            x = torch.randn(rows, 1, DIM, generator=g)
            got = lm.backbone(x, start=pos, cache=ours, cross_kv=ckv, fused=fused)
            want = lm.backbone(x, start=pos, cache=theirs, cross_kv=ckv)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=2e-5)
    end = 12
    torch.testing.assert_close(ours.k[..., :end, :], theirs.k[..., :end, :], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.v[..., :end, :], theirs.v[..., :end, :], rtol=1e-5, atol=1e-5)
    assert not bool(ours.k[..., end:, :].any())  # nothing written past the steps taken


@pytest.mark.parametrize("partial", [False, True])
def test_generation_with_cfg_equals_the_module_path(monkeypatch, partial):
    lm = _lm()
    g = torch.Generator().manual_seed(3)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 3:] = False
    cond = Conditions(cross=torch.randn(2, 6, DIM, generator=g), cross_mask=mask)
    prompt = torch.randint(0, 64, (2, 4, 3), generator=g)
    greedy = SamplingParams(top_k=1)
    built = []
    real_build = FusedDecoder.build

    def spy(*args, **kwargs):
        built.append(real_build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(generate_module.FusedDecoder, "build", spy)
    kw = dict(num_frames=20, cond=cond, params=greedy, cfg_coef=3.0, prompt=prompt)
    if partial:  # three CFG branches: 3 x 2 rows in the kernel
        other = torch.randn(2, 6, DIM, generator=g)
        kw.update(partial_cond=Conditions(cross=other, cross_mask=mask), partial_coef=6.0)
    fast = generate(lm, **kw, return_logits=True)
    assert built and built[0] is not None  # the fused path ran
    monkeypatch.setattr(generate_module.FusedDecoder, "build", lambda *a, **k: None)
    slow = generate(lm, **kw, return_logits=True)
    assert torch.equal(fast.codes, slow.codes)
    torch.testing.assert_close(fast.logits, slow.logits, rtol=1e-4, atol=1e-4)


def test_declines_what_it_cannot_run():
    lm = _lm()
    rows = 2
    ckv = _cross(lm, rows)
    torch.manual_seed(0)
    fp32 = MusicLM(config=lm.config).eval()  # float linears: the module path
    assert FusedDecoder.build(fp32, _cache(rows), ckv, rows) is None
    assert (
        FusedDecoder.build(quantize_lm(fp32, "int8", inplace=False), _cache(rows), ckv, rows)
        is None
    )
    lazy = lm.cross_kv(torch.randn(rows, 6, DIM), None, lazy=True)  # training's form
    assert FusedDecoder.build(lm, _cache(rows), lazy, rows) is None
    bf16 = KVCache(
        num_layers=3, batch=rows, num_heads=HEADS, head_dim=DIM // HEADS, max_len=8,
        dtype=torch.bfloat16, device="cpu",
    )  # fmt: skip
    assert FusedDecoder.build(lm, bf16, ckv, rows) is None
    assert FusedDecoder.build(lm, _cache(3), ckv, rows) is None  # cache rows differ
    fused = FusedDecoder.build(lm, _cache(rows, max_len=8), ckv, rows)
    with pytest.raises(IndexError, match="outside the cache"):
        fused(torch.zeros(rows, 1, DIM), 8)
    assert fused(torch.zeros(rows, 2, DIM), 0) is None  # two positions: the module path
    assert fused(torch.zeros(rows, 1, DIM, dtype=torch.float64), 0) is None
    lm.train()  # dropout is the module path's
    assert FusedDecoder.build(lm, _cache(rows), ckv, rows) is None
