import json

import numpy as np
import pytest
import torch

from audiogen import audio, midi
from audiogen.codecs import Codec
from audiogen.data.manifest import ManifestItem, write_manifest
from audiogen.data.tokens import REST, TokenMeta, TokenShards, read_index, tokenize_manifest


@pytest.fixture
def small_manifest(tmp_path):
    sr = 16000
    items = []
    for i, f in enumerate([220.0, 330.0, 440.0]):
        t = torch.arange(int(sr * (0.5 + 0.25 * i))) / sr
        p = audio.save(tmp_path / f"a{i}.wav", 0.3 * torch.sin(2 * torch.pi * f * t)[None], sr)
        items.append(
            ManifestItem(str(p), len(t) / sr, sr, 1, description=f"tone {i}", split="train")
        )
    m = midi.save_notes([midi.Note(62, 0.0, 0.25, 90)], tmp_path / "a0.mid")
    items[0].midi = str(m)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEjunk" * 8)
    items.append(ManifestItem(str(bad), 1.0, sr, 1, description="broken"))
    write_manifest(tmp_path / "manifest.jsonl", items)
    return tmp_path / "manifest.jsonl", items


def _tokenize(codec, items, out, **kw):
    return tokenize_manifest(
        items,
        codec.encode,
        out,
        meta=TokenMeta.of(codec),
        progress=False,
        **kw,
    )


def test_tokenize_shards_roundtrip_and_resume(tmp_path, small_manifest):
    torch.manual_seed(0)
    codec = Codec.tiny().eval()
    _, items = small_manifest
    out = tmp_path / "tok"
    rep = _tokenize(codec, items, out, shard_frames=20)
    assert rep.done == 3 and list(rep.skipped) == [items[3].path]
    assert "cannot read audio" in rep.skipped[items[3].path]
    shards = TokenShards(out)
    assert len({e.shard for e in shards.entries}) >= 2  # small shard size splits items
    for e, it in zip(shards.entries, items, strict=False):
        wav, _ = audio.load(it.path, sample_rate=codec.sample_rate)
        expect = codec.encode(wav[None])[0]
        assert torch.equal(shards.codes(e), expect)
        assert e.caption == it.description
    pc = shards.pitch_classes(shards.entries[0])
    frames_note = int(0.25 * codec.frame_rate)
    assert (pc[: frames_note - 1] == 2).all() and (pc[frames_note + 1 :] == REST).all()
    assert (shards.pitch_classes(shards.entries[1]) == REST).all()
    # Resume: nothing is encoded twice.
    rep2 = _tokenize(codec, items, out, shard_frames=20)
    assert rep2.done == 0 and rep2.resumed == 3 and len(read_index(out)) == 3


def test_tokenize_refuses_other_codec(tmp_path, small_manifest):
    from audiogen.errors import UserError

    _, items = small_manifest
    codec = Codec.tiny().eval()
    _tokenize(codec, items[:1], tmp_path / "tok")
    (tmp_path / "tok" / "meta.json").write_text(json.dumps({"frame_rate": 1}))
    with pytest.raises(UserError, match="another codec"):
        _tokenize(codec, items[:1], tmp_path / "tok")


def test_tokenize_cli(tmp_path, small_manifest):
    from audiogen.cli import main

    manifest, _ = small_manifest
    Codec.tiny().save(tmp_path / "codec")
    assert (
        main(
            [
                "tokenize",
                str(manifest),
                "--codec",
                str(tmp_path / "codec"),
                "--out",
                str(tmp_path / "tok"),
            ]
        )
        == 0
    )
    entries = read_index(tmp_path / "tok")
    assert len(entries) == 3
    arr = np.load(tmp_path / "tok" / "shard_00000.npy", allow_pickle=False)
    assert arr.dtype == np.int16 and arr.shape[1] == Codec.tiny().num_codebooks


def test_tokenize_in_batches_matches_unbatched(tmp_path, small_manifest):
    # Items of 0.5, 0.75 and 1.0 s (and a broken one) in batches of 2: each keeps its own
    # frame count, and its codes are those of encoding it alone (padding changes only what
    # the encoder sees past the item's end).
    torch.manual_seed(0)
    codec = Codec.tiny().eval()
    _, items = small_manifest
    _tokenize(codec, items, tmp_path / "one")
    one = TokenShards(tmp_path / "one")
    rep = _tokenize(codec, items, tmp_path / "two", batch_size=2)
    assert rep.done == 3 and list(rep.skipped) == [items[3].path]
    two = TokenShards(tmp_path / "two")
    by_item = {e.item: e for e in two.entries}
    for e in one.entries:
        batched = two.codes(by_item[e.item])
        alone = one.codes(e)
        assert batched.shape == alone.shape
        assert (batched == alone).float().mean() >= 0.95
    rep = _tokenize(codec, items, tmp_path / "two", batch_size=2)
    assert rep.done == 0 and rep.resumed == 3


def test_tokenize_rejects_a_zero_batch(tmp_path, small_manifest):
    with pytest.raises(ValueError, match="batch_size"):
        _tokenize(Codec.tiny().eval(), small_manifest[1], tmp_path / "t", batch_size=0)


def test_tokenize_cli_batches(tmp_path, small_manifest, capsys):
    from audiogen.cli import main

    manifest, _ = small_manifest
    Codec.tiny().save(tmp_path / "codec")
    args = ["tokenize", str(manifest), "--codec", str(tmp_path / "codec")]
    assert main([*args, "--out", str(tmp_path / "tok"), "--batch", "2"]) == 0
    assert len(read_index(tmp_path / "tok")) == 3
    assert main([*args, "--out", str(tmp_path / "bad"), "--batch", "0"]) == 2
    assert "--batch must be at least 1" in capsys.readouterr().err
