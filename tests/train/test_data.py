"""Per-rank batches: ranks together see the single-process batch; positions resume."""

from __future__ import annotations

import itertools

from audiogen.train.data import DataPosition, ShardedBatches
from audiogen.train.loop import lr_factor


def _take(world: int, rank: int, n: int, position: DataPosition | None = None) -> list[list[int]]:
    it = ShardedBatches(
        num_items=100, global_batch=8, rank=rank, world_size=world, seed=3, position=position
    )
    return list(itertools.islice(iter(it), n))


def test_two_ranks_together_see_the_single_process_batch() -> None:
    one = _take(1, 0, 30)  # 12 batches per epoch: crosses two epoch boundaries
    r0, r1 = _take(2, 0, 30), _take(2, 1, 30)
    for k in range(30):
        assert sorted(r0[k] + r1[k]) == sorted(one[k])
        assert len(r0[k]) == len(r1[k]) == 4


def test_position_resumes_the_same_stream() -> None:
    it = ShardedBatches(num_items=100, global_batch=8, rank=0, world_size=1, seed=3)
    stream = iter(it)
    first = [next(stream) for _ in range(17)]
    saved = it.state_dict()
    rest = [next(stream) for _ in range(10)]
    resumed = _take(1, 0, 10, DataPosition(**saved))
    assert resumed == rest and first[0] != rest[0]


def test_lr_schedule() -> None:
    kw = dict(warmup=10, total=110, min_ratio=0.1)
    assert lr_factor(0, schedule="cosine", **kw) == 0.1
    assert lr_factor(10, schedule="cosine", **kw) == 1.0
    assert abs(lr_factor(110, schedule="cosine", **kw) - 0.1) < 1e-12
    assert lr_factor(50, schedule="constant", **kw) == 1.0
