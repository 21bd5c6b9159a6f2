"""Training windows: fixed-length audio segments from a manifest, for a DataLoader.

Each index maps to one window through an RNG seeded by (seed, epoch, rank, index), so
results are the same with any number of DataLoader workers and across restarts. Under
torchrun each rank reads its own disjoint share of the manifest's items.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from audiogen import audio
from audiogen.data.manifest import ManifestItem, read_manifest
from audiogen.errors import UserError

PAD_POLICIES = ("zero", "repeat", "drop")


@dataclass
class Segment:
    """One training window.

    wav: [C, T] float32, T = segment_seconds * sample_rate; samples from ``valid`` on are
        padding. chroma: [F, 12] exact note chroma of the window (None without a MIDI).
    offset: where the window starts in the file, in seconds.
    """

    wav: torch.Tensor
    description: str
    chroma: torch.Tensor | None
    valid: int
    path: str
    offset: float


@dataclass
class SegmentBatch:
    """A collated batch: wav [B, C, T], chroma [B, F, 12] (zeros where has_chroma is False),
    has_chroma [B] bool, valid [B] int64 (real samples per row)."""

    wav: torch.Tensor
    descriptions: list[str]
    chroma: torch.Tensor | None
    has_chroma: torch.Tensor
    valid: torch.Tensor
    paths: list[str]
    offsets: list[float]


def collate_segments(batch: list[Segment]) -> SegmentBatch:
    """``collate_fn`` for a DataLoader over :class:`SegmentDataset`."""
    has = torch.tensor([s.chroma is not None for s in batch])
    chroma = None
    if bool(has.any()):
        ref = next(s.chroma for s in batch if s.chroma is not None)
        chroma = torch.stack(
            [s.chroma if s.chroma is not None else torch.zeros_like(ref) for s in batch]
        )
    return SegmentBatch(
        wav=torch.stack([s.wav for s in batch]),
        descriptions=[s.description for s in batch],
        chroma=chroma,
        has_chroma=has,
        valid=torch.tensor([s.valid for s in batch], dtype=torch.int64),
        paths=[s.path for s in batch],
        offsets=[s.offset for s in batch],
    )


def rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values win; else torch.distributed's when initialised; else (0, 1)."""
    if rank is None or world_size is None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
    rank, world_size = rank or 0, world_size or 1
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world size {world_size}")
    return rank, world_size


class SegmentDataset(Dataset):
    """Fixed-length windows over a manifest's items.

    Args:
        items: manifest items or a manifest path.
        segment_seconds: window length; sample_rate / channels: output format (audio is
            resampled and mixed as needed).
        random_offsets: True (training): ``num_samples`` windows, each from an item drawn
            in proportion to its duration at a uniform random offset. False (evaluation):
            every item cut into consecutive windows, in order.
        pad: for audio shorter than a window: 'zero' pads with silence, 'repeat' loops the
            audio, 'drop' leaves such items (and partial last windows) out.
        split: keep only items of this split. rank / world_size: this process's disjoint
            share (default: from torch.distributed when initialised).
        chroma_frame_rate: frames per second of ``Segment.chroma``.
    """

    def __init__(
        self,
        items: list[ManifestItem] | str | os.PathLike,
        *,
        segment_seconds: float,
        sample_rate: int,
        channels: int = 1,
        random_offsets: bool = True,
        num_samples: int | None = None,
        pad: str = "zero",
        seed: int = 0,
        split: str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        chroma_frame_rate: float = 50.0,
        cache_midi: int = 256,
    ):
        if pad not in PAD_POLICIES:
            raise ValueError(f"pad must be one of {PAD_POLICIES}, got {pad!r}")
        if segment_seconds <= 0:
            raise ValueError("segment_seconds must be > 0")
        if not isinstance(items, list):
            items = read_manifest(Path(items))
        if split is not None:
            items = [i for i in items if i.split == split]
        if pad == "drop":
            items = [i for i in items if i.duration >= segment_seconds]
        self.rank, self.world_size = rank_and_world(rank, world_size)
        # Sorting first makes the shares identical on every rank whatever the file order.
        items = sorted(items, key=lambda i: i.path)[self.rank :: self.world_size]
        if not items:
            raise UserError(
                f"no items for rank {self.rank} of {self.world_size} "
                f"(split={split}, pad={pad}, segment {segment_seconds} s)"
            )
        self.items = items
        self.segment_seconds = float(segment_seconds)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.random_offsets = random_offsets
        self.pad = pad
        self.seed = int(seed)
        self.epoch = 0
        self.chroma_frame_rate = float(chroma_frame_rate)
        self.num_frames = int(round(self.segment_seconds * self.sample_rate))
        self._weights = np.array([i.duration for i in items], dtype=np.float64)
        self._weights /= self._weights.sum()
        self._windows: list[tuple[int, float]] = []
        if not random_offsets:
            for k, item in enumerate(items):
                n = item.duration / self.segment_seconds
                count = math.floor(n) if pad == "drop" else max(1, math.ceil(n - 1e-9))
                self._windows += [(k, w * self.segment_seconds) for w in range(count)]
        total = sum(i.duration for i in items)
        self.num_samples = num_samples or max(1, int(total // self.segment_seconds))
        self._cache_size = cache_midi
        self._notes: OrderedDict[str, list] = OrderedDict()

    def set_epoch(self, epoch: int) -> None:
        """Draw different windows each epoch (call before iterating, like a sampler)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples if self.random_offsets else len(self._windows)

    def window(self, index: int) -> tuple[int, float]:
        """(item index, offset seconds) of window ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        if not self.random_offsets:
            return self._windows[index]
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, index])
        k = int(rng.choice(len(self.items), p=self._weights))
        room = max(0.0, self.items[k].duration - self.segment_seconds)
        return k, float(rng.uniform(0.0, room)) if room > 0 else 0.0

    def __getitem__(self, index: int) -> Segment:
        k, offset = self.window(index)
        item = self.items[k]
        src_frames = int(math.ceil(self.segment_seconds * item.sample_rate))
        wav, _ = audio.load(
            item.path, channels=self.channels, offset=offset, duration=src_frames / item.sample_rate
        )
        if item.sample_rate != self.sample_rate:
            wav = audio.resample(wav, item.sample_rate, self.sample_rate)
        wav = wav[:, : self.num_frames]
        valid = wav.shape[-1]
        loops, period = 1, 0.0
        if valid < self.num_frames:
            if self.pad == "repeat":
                period = valid / self.sample_rate
                loops = math.ceil(self.num_frames / valid)
                wav = wav.repeat(1, loops)[:, : self.num_frames]
                valid = self.num_frames
            else:
                wav = torch.nn.functional.pad(wav, (0, self.num_frames - valid))
        chroma = None
        if item.midi:
            chroma = self._chroma(item.midi, offset, loops, period)
        return Segment(wav.contiguous(), item.description, chroma, int(valid), item.path, offset)

    def _chroma(self, midi_path: str, offset: float, loops: int, period: float) -> torch.Tensor:
        from audiogen import midi

        notes = self._notes.get(midi_path)
        if notes is None:
            notes = midi.load_notes(midi_path)
            self._notes[midi_path] = notes
            if len(self._notes) > self._cache_size:
                self._notes.popitem(last=False)
        else:
            self._notes.move_to_end(midi_path)
        if loops > 1:  # the audio was looped: loop the notes the same way
            notes = [
                dataclasses.replace(
                    n, start=n.start + j * period, end=min(n.end, period) + j * period
                )
                for j in range(loops)
                for n in notes
                if n.start < period
            ]
        frames = int(round(self.segment_seconds * self.chroma_frame_rate))
        c = midi.chroma(notes, self.chroma_frame_rate, num_frames=frames, start=offset)
        return torch.from_numpy(c)
