"""FAD end to end on files: a set against itself is ~0 and grows with added noise."""

from __future__ import annotations

import torch

from audiogen import audio
from audiogen.eval.embeddings import build_embedding
from audiogen.eval.fad import EmbeddingStats
from audiogen.eval.run import evaluate_fad


def _noisy_copy(tmp_path, wavs, level: float, name: str):
    d = tmp_path / name
    d.mkdir()
    g = torch.Generator().manual_seed(1)
    for i, w in enumerate(wavs):
        audio.save(
            d / f"tone{i}.wav", (w + level * torch.randn(w.shape, generator=g)).clamp(-1, 1), 16000
        )
    return d


def test_self_is_zero_and_noise_increases_fad(tmp_path, tone_set, vggish_weights):
    folder, wavs = tone_set
    model = build_embedding("vggish", weights=vggish_weights)
    stats = tmp_path / "ref.npz"
    same, frames = evaluate_fad(
        reference=folder, generated=folder, model=model, save_stats=stats, progress=False
    )
    assert abs(same.summary["fad"]) < 1e-6
    assert frames["reference"].shape == (12, 128)  # 6 files x 2 examples of 0.96 s
    fads = []
    for level in (0.02, 0.1, 0.4):
        noisy = _noisy_copy(tmp_path, wavs, level, f"noise{level}")
        rep, _ = evaluate_fad(reference=stats, generated=noisy, model=model, progress=False)
        fads.append(rep.summary["fad"])
        assert len(rep.items) == 6
    assert 1e-6 < fads[0] < fads[1] < fads[2]
    loaded = EmbeddingStats.load(stats)
    assert loaded.embedding == "vggish" and loaded.version == model.version and loaded.count == 12


def test_mfcc_backend_and_unreadable_files_are_listed(tmp_path, tone_set):
    folder, wavs = tone_set
    gen = _noisy_copy(tmp_path, wavs[:3], 0.05, "gen")
    (gen / "broken.wav").write_bytes(b"RIFF not really")
    model = build_embedding("mfcc")
    rep, _ = evaluate_fad(reference=folder, generated=gen, model=model, progress=False)
    assert rep.summary["fad"] > 0 and rep.summary["generated_files"] == 3
    assert [f["path"].endswith("broken.wav") for f in rep.failed] == [True]


def test_manifest_reference(tmp_path, tone_set):
    folder, _ = tone_set
    manifest = tmp_path / "ref.jsonl"
    manifest.write_text("".join(f'{{"path": "{p}"}}\n' for p in sorted(folder.glob("*.wav"))))
    model = build_embedding("mfcc")
    rep, _ = evaluate_fad(reference=manifest, generated=folder, model=model, progress=False)
    assert abs(rep.summary["fad"]) < 1e-6
