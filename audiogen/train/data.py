"""Per-rank batches of dataset indices with a resumable position.

Each epoch is one ``DistributedSampler`` permutation (seeded, so every rank agrees); rank
``r`` of ``W`` takes every W-th index, and batch ``k`` of all ranks together is exactly
batch ``k`` of a single process with the same global batch size. The position
``(epoch, batch)`` goes into checkpoints so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from torch.utils.data import DistributedSampler


@dataclass
class DataPosition:
    """Next batch to read: ``batch`` within ``epoch``."""

    epoch: int = 0
    batch: int = 0


class ShardedBatches:
    """Endless iterator of this rank's index batches ``list[int]`` of ``batch_size // world``."""

    def __init__(
        self,
        *,
        num_items: int,
        global_batch: int,
        rank: int,
        world_size: int,
        seed: int,
        position: DataPosition | None = None,
    ) -> None:
        if global_batch % world_size:
            raise ValueError(f"batch size {global_batch} is not divisible by {world_size} ranks")
        self.local_batch = global_batch // world_size
        self.sampler = DistributedSampler(
            range(num_items),
            num_replicas=world_size,
            rank=rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        self.batches_per_epoch = len(self.sampler) // self.local_batch
        if self.batches_per_epoch == 0:
            raise ValueError(f"{num_items} items are fewer than one global batch ({global_batch})")
        self.position = position or DataPosition()

    def state_dict(self) -> dict:
        return asdict(self.position)

    def load_state_dict(self, state: dict) -> None:
        self.position = DataPosition(**state)

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            self.sampler.set_epoch(self.position.epoch)
            order = list(self.sampler)
            while self.position.batch < self.batches_per_epoch:
                k = self.position.batch
                self.position.batch += 1
                yield order[k * self.local_batch : (k + 1) * self.local_batch]
            self.position = DataPosition(epoch=self.position.epoch + 1, batch=0)
