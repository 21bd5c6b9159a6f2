import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from audiogen import midi
from audiogen.data.manifest import ManifestItem, write_manifest
from audiogen.data.segments import SegmentDataset, collate_segments
from audiogen.errors import UserError

SR = 16000


def _item(tmp_path, name, seconds, pitches=None, sr=SR):
    path = tmp_path / f"{name}.flac"
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    mid = None
    if pitches:
        pm = pretty_midi.PrettyMIDI()
        inst = pretty_midi.Instrument(0)
        step = seconds / len(pitches)
        for k, p in enumerate(pitches):
            inst.notes.append(pretty_midi.Note(80, p, k * step, (k + 1) * step))
        pm.instruments.append(inst)
        mid = tmp_path / f"{name}.mid"
        pm.write(str(mid))
    return ManifestItem(
        path=str(path),
        duration=seconds,
        sample_rate=sr,
        channels=1,
        description=f"caption {name}",
        midi=str(mid) if mid else None,
    )


@pytest.fixture
def items(tmp_path):
    return [
        _item(tmp_path, "a", 6.0, pitches=[60, 62, 64, 65, 67, 69]),
        _item(tmp_path, "b", 4.0),
        _item(tmp_path, "c", 5.0, pitches=[57, 59]),
        _item(tmp_path, "d", 3.0, sr=22050),
    ]


def test_windows_format_and_determinism(items):
    ds = SegmentDataset(
        items, segment_seconds=2.0, sample_rate=8000, channels=2, num_samples=12, seed=1
    )
    assert len(ds) == 12
    seg = ds[3]
    assert seg.wav.shape == (2, 16000) and seg.wav.dtype == torch.float32 and seg.valid == 16000
    assert seg.description.startswith("caption")
    again = SegmentDataset(
        items, segment_seconds=2.0, sample_rate=8000, channels=2, num_samples=12, seed=1
    )
    assert [ds.window(i) for i in range(12)] == [again.window(i) for i in range(12)]
    torch.testing.assert_close(ds[3].wav, again[3].wav)
    ds.set_epoch(1)
    assert [ds.window(i) for i in range(12)] != [again.window(i) for i in range(12)]


def test_chroma_is_exact_for_the_window(items):
    ds = SegmentDataset(
        items[:1], segment_seconds=2.0, sample_rate=SR, num_samples=5, chroma_frame_rate=25
    )
    for i in range(5):
        seg = ds[i]
        notes = midi.load_notes(items[0].midi)
        want = midi.chroma(notes, 25, num_frames=50, start=seg.offset)
        np.testing.assert_allclose(seg.chroma.numpy(), want)
        # The sounding pitch class at the window's middle is the note scheduled there.
        mid = seg.offset + 1.0
        pc = [60, 62, 64, 65, 67, 69][int(mid)] % 12
        assert seg.chroma[25].argmax() == pc


def test_dataloader_workers_match_single_process(items, tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, items)
    ds = SegmentDataset(path, segment_seconds=1.0, sample_rate=SR, num_samples=8, seed=3)
    single = list(DataLoader(ds, batch_size=4, collate_fn=collate_segments))
    multi = list(DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_segments))
    for a, b in zip(single, multi, strict=True):
        torch.testing.assert_close(a.wav, b.wav)
        assert a.offsets == b.offsets and a.descriptions == b.descriptions
        assert a.wav.shape == (4, 1, SR) and a.chroma.shape == (4, 50, 12)
        assert a.has_chroma.tolist() == [p.endswith(("a.flac", "c.flac")) for p in a.paths]


def test_ranks_get_disjoint_shares(items):
    shares = [
        {
            i.path
            for i in SegmentDataset(
                items, segment_seconds=1.0, sample_rate=SR, rank=r, world_size=3
            ).items
        }
        for r in range(3)
    ]
    assert set.union(*shares) == {i.path for i in items}
    assert sum(len(s) for s in shares) == len(items)
    with pytest.raises(UserError, match="no items for rank"):
        SegmentDataset(items[:1], segment_seconds=1.0, sample_rate=SR, rank=1, world_size=2)


def test_padding_policies(items):
    short = [items[3]]  # 3 s at 22.05 kHz
    zero = SegmentDataset(short, segment_seconds=4.0, sample_rate=SR, pad="zero", num_samples=1)[0]
    assert zero.wav.shape == (1, 4 * SR) and abs(zero.valid - 3 * SR) <= 1
    assert zero.wav[:, zero.valid :].abs().max() == 0
    rep = SegmentDataset(short, segment_seconds=4.0, sample_rate=SR, pad="repeat", num_samples=1)[0]
    assert rep.valid == 4 * SR
    torch.testing.assert_close(
        rep.wav[:, 3 * SR : 3 * SR + 1000], rep.wav[:, :1000], atol=2e-2, rtol=0
    )
    with pytest.raises(UserError):
        SegmentDataset(short, segment_seconds=4.0, sample_rate=SR, pad="drop")


def test_evaluation_windows_cover_each_item_in_order(items):
    ds = SegmentDataset(items, segment_seconds=2.0, sample_rate=SR, random_offsets=False)
    # a: 6 s → 3, b: 4 s → 2, c: 5 s → 3 (last padded), d: 3 s → 2
    assert len(ds) == 10
    assert [ds.window(i)[1] for i in range(3)] == [0.0, 2.0, 4.0]
    last_c = ds[7]
    assert last_c.offset == 4.0 and last_c.valid == SR
    dropped = SegmentDataset(
        items, segment_seconds=2.0, sample_rate=SR, random_offsets=False, pad="drop"
    )
    assert len(dropped) == 3 + 2 + 2 + 1
