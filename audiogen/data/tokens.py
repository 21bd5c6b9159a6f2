"""Token shards: codec codes of a manifest's audio, for LM training.

Layout of a token directory::

    meta.json               codec facts (sample_rate, frame_rate, num_codebooks, cardinality)
    shard_00000.npy         int16 [T, K] codes of several items, concatenated in time
    shard_00000.pc.npy      uint8 [T] melody pitch class per frame (0..11; 12 = rest/unknown)
    index.jsonl             one line per item: item, shard, offset, length, caption, split, ...

Shards are written atomically and an item's index line is appended only after its shard is
on disk, so an interrupted run resumes by skipping items already in the index.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from audiogen import audio, midi
from audiogen.data.manifest import ManifestItem
from audiogen.errors import UserError
from audiogen.fileio import atomic_path, atomic_write_text

REST = midi.REST_PITCH_CLASS  # frames with no melody note (or no MIDI)


@dataclass
class TokenEntry:
    """One tokenized item: ``length`` frames at ``offset`` in shard ``shard``."""

    item: str
    shard: int
    offset: int
    length: int
    caption: str = ""
    split: str = "train"
    has_melody: bool = False


@dataclass(frozen=True)
class TokenMeta:
    """Codec facts a token directory records in ``meta.json`` (and LM training checks)."""

    sample_rate: int
    channels: int
    frame_rate: float
    num_codebooks: int
    cardinality: int

    @classmethod
    def of(cls, codec) -> TokenMeta:
        """Read the facts from any object with the codec interface (see DESIGN.md)."""
        return cls(
            sample_rate=int(codec.sample_rate),
            channels=int(codec.channels),
            frame_rate=float(codec.frame_rate),
            num_codebooks=int(codec.num_codebooks),
            cardinality=int(codec.cardinality),
        )


@dataclass
class TokenizeReport:
    """What a tokenize run did; ``skipped`` maps path → reason."""

    done: int = 0
    resumed: int = 0
    frames: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


def _shard_name(i: int) -> str:
    return f"shard_{i:05d}"


def read_index(out_dir: str | os.PathLike) -> list[TokenEntry]:
    """Entries of a token directory's ``index.jsonl`` (empty if there is none yet)."""
    path = Path(out_dir) / "index.jsonl"
    if not path.exists():
        return []
    entries = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entries.append(TokenEntry(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as e:
                raise UserError(f"{path}:{lineno}: bad index line ({e})") from None
    return entries


def melody_pitch_classes(midi_path: str | None, frame_rate: float, num_frames: int) -> np.ndarray:
    """Dominant pitch class per frame [F] (uint8, REST where nothing sounds)."""
    if not midi_path:
        return np.full(num_frames, REST, dtype=np.uint8)
    notes = midi.load_notes(midi_path, melody=True)
    c = midi.chroma(notes, frame_rate, num_frames)
    pc = c.argmax(axis=1).astype(np.uint8)
    pc[c.max(axis=1) <= 0] = REST
    return pc


def tokenize_manifest(
    items: list[ManifestItem],
    encode: Callable[[torch.Tensor], torch.Tensor],
    out_dir: str | os.PathLike,
    *,
    meta: TokenMeta,
    shard_frames: int = 1 << 18,
    progress: bool = True,
    batch_size: int = 1,
) -> TokenizeReport:
    """Encode every item's audio with ``encode`` (wav [B, C, T] → codes [B, K, F]).

    Resumable: items already in ``index.jsonl`` are skipped. Unreadable audio or MIDI is
    skipped and reported, never fatal. With ``batch_size`` > 1, items are taken in order of
    length and ``batch_size`` at a time, zero-padded on the right to the longest of the
    batch, and each item's codes are cut to its own ``ceil(T / hop)`` frames (the number
    its unbatched encoding has). What the encoder sees past an item's end changes (zeros
    instead of the codec's reflected edge), so the last frames, within the encoder's
    receptive field of the end, may differ from the unbatched codes; earlier frames differ
    only where float rounding picks the other of two equally near codes (10% of the
    bundled codec's first-codebook frames at batch 4: its codebook holds duplicates).
    Batches pay off on a GPU.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    from tqdm import tqdm

    if meta.cardinality > 32767:
        raise UserError(f"codec cardinality {meta.cardinality} does not fit int16 token shards")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta_dict = asdict(meta)
    meta_path = out / "meta.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old != meta_dict:
            raise UserError(f"{out}: holds tokens of another codec ({old}); use a new --out")
    else:
        atomic_write_text(meta_path, json.dumps(meta_dict, indent=2))
    entries = read_index(out)
    done = {e.item for e in entries}
    shard = max((e.shard for e in entries), default=-1) + 1
    report = TokenizeReport(resumed=len(done))
    buf_codes: list[np.ndarray] = []
    buf_pc: list[np.ndarray] = []
    pending: list[TokenEntry] = []
    offset = 0

    def flush() -> None:
        nonlocal shard, offset
        if not pending:
            return
        name = _shard_name(shard)
        for arr, suffix in (
            (np.concatenate(buf_codes), ".npy"),
            (np.concatenate(buf_pc), ".pc.npy"),
        ):
            with atomic_path(out / f"{name}{suffix}") as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, arr)
        with open(out / "index.jsonl", "a", encoding="utf-8") as f:
            f.writelines(json.dumps(asdict(e)) + "\n" for e in pending)
            f.flush()
            os.fsync(f.fileno())
        shard += 1
        offset = 0
        buf_codes.clear(), buf_pc.clear(), pending.clear()

    todo = [it for it in items if it.path not in done]
    if batch_size > 1:
        todo.sort(key=_duration_or_zero)
    hop = meta.sample_rate / meta.frame_rate
    bar = tqdm(total=len(todo), desc="tokenize", unit="item", disable=not progress)
    for first in range(0, len(todo), batch_size):
        loaded: list[tuple[ManifestItem, torch.Tensor]] = []
        for it in todo[first : first + batch_size]:
            try:
                wav, _ = audio.load(it.path, sample_rate=meta.sample_rate, channels=meta.channels)
            except UserError as e:
                report.skipped[it.path] = str(e)
                continue
            loaded.append((it, wav))
        codes_of = _encode_batch(encode, [w for _, w in loaded], hop) if loaded else []
        for (it, _), codes in zip(loaded, codes_of, strict=True):
            try:
                pc = melody_pitch_classes(it.midi, meta.frame_rate, codes.shape[-1])
            except UserError as e:
                report.skipped[it.path] = str(e)
                continue
            arr = codes.T.to(torch.int16).cpu().numpy()  # [F, K]
            buf_codes.append(arr)
            buf_pc.append(pc)
            pending.append(
                TokenEntry(
                    item=it.path,
                    shard=shard,
                    offset=offset,
                    length=arr.shape[0],
                    caption=it.description,
                    split=it.split,
                    has_melody=bool(it.midi),
                )
            )
            offset += arr.shape[0]
            report.done += 1
            report.frames += arr.shape[0]
            if offset >= shard_frames:
                flush()
        bar.update(min(batch_size, len(todo) - first))
    bar.close()
    flush()
    return report


def _duration_or_zero(item: ManifestItem) -> float:
    """An item's length for ordering batches: the manifest's, else the file's, else 0."""
    if item.duration:
        return float(item.duration)
    try:
        return audio.info(item.path).duration
    except UserError:
        return 0.0  # unreadable: its load fails and reports it


def _encode_batch(
    encode: Callable[[torch.Tensor], torch.Tensor], wavs: list[torch.Tensor], hop: float
) -> list[torch.Tensor]:
    """Codes [K, F_i] of each wav [C, T_i], encoded as one zero-padded batch."""
    if len(wavs) == 1:
        batch = wavs[0][None]
    else:
        longest = max(w.shape[-1] for w in wavs)
        batch = torch.zeros(len(wavs), wavs[0].shape[0], longest, dtype=wavs[0].dtype)
        for i, w in enumerate(wavs):
            batch[i, :, : w.shape[-1]] = w
    with torch.inference_mode():
        codes = encode(batch)
    return [codes[i, :, : math.ceil(w.shape[-1] / hop)] for i, w in enumerate(wavs)]


class TokenShards:
    """Read access to a token directory: ``codes(entry) -> int64 [K, F]``, memory-mapped."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        meta = self.root / "meta.json"
        if not meta.exists():
            raise UserError(f"{self.root}: not a token directory (no meta.json)")
        self.meta = json.loads(meta.read_text())
        self.entries = read_index(self.root)
        self._maps: dict[tuple[int, str], np.ndarray] = {}

    def _array(self, shard: int, suffix: str) -> np.ndarray:
        key = (shard, suffix)
        if key not in self._maps:
            path = self.root / f"{_shard_name(shard)}{suffix}"
            try:
                self._maps[key] = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise UserError(f"{path}: cannot read token shard ({e})") from None
        return self._maps[key]

    def codes(self, e: TokenEntry, start: int = 0, length: int | None = None) -> torch.Tensor:
        """Codes [K, F] of ``e`` from frame ``start`` (``length`` frames, default all)."""
        n = e.length - start if length is None else length
        a = self._array(e.shard, ".npy")[e.offset + start : e.offset + start + n]
        return torch.from_numpy(np.array(a, dtype=np.int64)).T

    def pitch_classes(self, e: TokenEntry, start: int = 0, length: int | None = None) -> np.ndarray:
        """Melody pitch class per frame [F] (REST = 12)."""
        n = e.length - start if length is None else length
        return np.array(self._array(e.shard, ".pc.npy")[e.offset + start : e.offset + start + n])
