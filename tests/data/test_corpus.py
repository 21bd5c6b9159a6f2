"""Corpus builds: determinism for a seed, split by piece, resume, broken pieces, renderers."""

import json

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from audiogen.data.corpus import CorpusConfig, build_corpus
from audiogen.data.manifest import read_manifest
from audiogen.data.sources import list_pieces

SOURCES = ["music21:nottingham", "music21:oneills"]


def _cfg(out, **kw):
    base = dict(sources=SOURCES, out=out, limit=2, seed=7, sample_rate=16000, max_seconds=6.0)
    return CorpusConfig(**(base | kw))


def _facts(manifest):
    return [
        (i.piece, i.description, i.split, i.bpm, i.key, i.instruments)
        for i in read_manifest(manifest)
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    first = build_corpus(_cfg(root / "a", versions=2), progress=False)
    return root, first


def test_build_writes_audio_midi_manifest(built):
    root, result = built
    items = read_manifest(root / "a" / "manifest.jsonl")
    assert len(items) == 8 and result.rendered == 8 and not result.report.skipped
    for it in items:
        wav, sr = sf.read(it.path)
        assert sr == 16000 and wav.ndim == 1 and np.abs(wav).max() > 0.5
        assert abs(len(wav) / sr - it.duration) < 1e-3 and it.duration <= 6.0 + 1.5
        assert it.key in it.description and f"{int(it.bpm)} bpm" in it.description
        assert any(name in it.description for name in it.instruments)
        assert pretty_midi.PrettyMIDI(it.midi).instruments
        assert it.source in SOURCES
    assert json.loads((root / "a" / "index_report.json").read_text())["indexed"] == 8


def test_same_seed_same_corpus_and_resume(built):
    root, _ = built
    again = build_corpus(_cfg(root / "b", versions=2), progress=False)
    assert _facts(root / "a" / "manifest.jsonl") == _facts(root / "b" / "manifest.jsonl")
    a = sorted((root / "a" / "audio").rglob("*.flac"))
    b = sorted((root / "b" / "audio").rglob("*.flac"))
    assert [p.name for p in a] == [p.name for p in b]
    np.testing.assert_array_equal(sf.read(a[0])[0], sf.read(b[0])[0])
    resumed = build_corpus(_cfg(root / "b", versions=2), progress=False)
    assert (resumed.rendered, resumed.resumed) == (0, 8) and again.rendered == 8
    build_corpus(_cfg(root / "c", seed=8, limit=1), progress=False)
    assert _facts(root / "c" / "manifest.jsonl") != _facts(root / "a" / "manifest.jsonl")[:2]


def test_splits_are_by_piece(built):
    root, _ = built
    split_of: dict[str, set[str]] = {}
    for it in read_manifest(root / "a" / "manifest.jsonl"):
        split_of.setdefault(it.piece, set()).add(it.split)
    assert len(split_of) == 4 and all(len(s) == 1 for s in split_of.values())


def test_pieces_are_enumerated_from_multi_tune_books():
    pieces = list_pieces("music21:oneills")
    assert len(pieces) > 300 and len({p.piece_id for p in pieces}) == len(pieces)
    assert all(p.abc and p.abc.lstrip().startswith(("X:", "M:", "L:")) for p in pieces[:20])
    assert len(list_pieces("music21:bach")) > 300


def test_midi_source_ddsp_and_broken_piece(tmp_path):
    src = tmp_path / "midi"
    src.mkdir()
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    inst = pretty_midi.Instrument(0)
    for k, p in enumerate([62, 64, 66, 67, 69, 71, 73, 74]):
        inst.notes.append(pretty_midi.Note(90, p, k * 0.5, k * 0.5 + 0.45))
    pm.instruments.append(inst)
    pm.write(str(src / "scale.mid"))
    (src / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    cfg = CorpusConfig(
        sources=[f"midi:{src}"], out=tmp_path / "out", renderer="ddsp", sample_rate=16000
    )
    result = build_corpus(cfg, progress=False)
    (item,) = result.report.items
    # The source is a D major scale; the rendering is transposed and says so truthfully.
    tonic_name, mode = item.key.split()
    assert mode == "major" and item.key in item.description
    tonic = pretty_midi.note_name_to_number(tonic_name + "4") % 12
    pcs = {n.pitch % 12 for n in pretty_midi.PrettyMIDI(item.midi).instruments[0].notes}
    assert pcs == {(tonic + k) % 12 for k in (0, 2, 4, 5, 7, 9, 11)}
    assert [s.path for s in result.report.skipped] == ["midi/broken"]
    assert "broken" in (tmp_path / "out" / "index_report.json").read_text()
