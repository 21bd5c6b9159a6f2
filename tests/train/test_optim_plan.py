"""The bf16 AdamW's cached chunk views follow tensors that are replaced between steps."""

from __future__ import annotations

import copy

import torch

from audiogen.train.optim import AdamW


def _params() -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    shapes = [(300, 7), (5,), (2, 3, 4)]
    return [torch.nn.Parameter(torch.randn(s, generator=g).bfloat16()) for s in shapes]


def _step(opt: AdamW, ps: list[torch.nn.Parameter], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for p in ps:
        p.grad = torch.randn(p.shape, generator=g).bfloat16()
    opt.step()


def test_load_state_dict_mid_run_continues_exactly() -> None:
    # chunk_size 64 cuts tensors across chunks, so split and whole views are both used
    ps = _params()
    gen = torch.Generator().manual_seed(1)
    opt = AdamW(ps, lr=1e-2, weight_decay=0.1, generator=gen, chunk_size=64)
    for s in range(3):
        _step(opt, ps, s)
    saved_params = [p.detach().clone() for p in ps]
    saved_state = copy.deepcopy(opt.state_dict())
    saved_gen = gen.get_state()
    for s in range(3, 5):
        _step(opt, ps, s)
    expected = [p.detach().clone() for p in ps]

    # Same optimizer object: load_state_dict puts new moment tensors in place, which the
    # cached views must follow (stale views would update the discarded tensors).
    with torch.no_grad():
        for p, q in zip(ps, saved_params, strict=True):
            p.copy_(q)
    opt.load_state_dict(saved_state)
    gen.set_state(saved_gen)
    for s in range(3, 5):
        _step(opt, ps, s)
    for p, e in zip(ps, expected, strict=True):
        assert torch.equal(p.detach(), e)


def test_replaced_parameter_storage_is_updated() -> None:
    ps = _params()
    gen = torch.Generator().manual_seed(2)
    opt = AdamW(ps, lr=1e-1, weight_decay=0.0, generator=gen, chunk_size=64)  # split views
    _step(opt, ps, 0)
    before = ps[0].detach().clone()
    ps[0].data = ps[0].detach().clone()  # new storage behind the same Parameter
    _step(opt, ps, 1)
    assert not torch.equal(ps[0].detach(), before)  # the step reached the new storage
