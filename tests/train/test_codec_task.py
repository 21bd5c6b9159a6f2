"""The codec task: reconstruction learns, the GAN branch runs, checkpoints load, resume is exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from audiogen.codecs import Codec, CodecConfig, build_codec
from audiogen.train import checkpoint as ckpt
from audiogen.train import codec_task
from audiogen.train.loop import train
from audiogen.train.recipes import parse_recipe

from .conftest import QUIET, REPO

RECIPE = REPO / "recipes" / "codec_tiny.toml"
SR = 8000
# The real recipe shrunk to a debug size: 8 kHz, hop 64, 4 codebooks of 32, 0.25 s windows.
TINY = [
    f"model.sample_rate={SR}",
    "model.ratios=[4, 4, 4]",
    "model.n_filters=4",
    "model.dimension=16",
    "model.bins=32",
    "model.kmeans_iters=5",
    "model.target_bandwidths=[1.0]",
    "loss.mel_n_ffts=[64, 128, 256]",
    "loss.mel_bins=16",
    "loss.stft_n_ffts=[256, 512]",
    "loss.disc_filters=4",
    "loss.disc_n_ffts=[128, 256]",
    "data.segment_seconds=0.25",
    "data.num_windows=64",
    "train.batch_size=4",
    "train.log_every=1",
    "optim.warmup_steps=0",
    "optim.schedule=constant",
    "loss.quantize_start=0",  # the recipe's autoencoder warm-up is tested on its own
]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """Four 1 s tones (two partials, a decaying envelope) at 8 kHz."""
    root = tmp_path_factory.mktemp("tones")
    t = np.arange(SR) / SR
    lines = []
    for i, f0 in enumerate((220.0, 330.0, 440.0, 550.0)):
        wav = 0.4 * np.sin(2 * np.pi * f0 * t) + 0.2 * np.sin(2 * np.pi * 2 * f0 * t)
        wav *= np.exp(-2 * (t % 0.5))
        sf.write(root / f"tone{i}.wav", wav.astype(np.float32), SR)
        item = {"path": f"tone{i}.wav", "duration": 1.0, "sample_rate": SR, "channels": 1}
        lines.append(json.dumps(item))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root / "manifest.jsonl"


def _recipe(manifest: Path, *overrides: str):
    sets = [*QUIET, *TINY, f"data.manifest={manifest}", *overrides]
    return parse_recipe(RECIPE, codec_task.CodecRecipe, sets)


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_reconstruction_loss_decreases(manifest, tmp_path) -> None:
    recipe = _recipe(
        manifest,
        "train.steps=30",
        "loss.adversarial_start=1000",
        "optim.lr=3e-3",
        "loss.log_stft=0.5",
        "loss.log_stft_n_ffts=[128, 256]",
    )
    train(codec_task.TASK, recipe, out_dir=tmp_path)
    log = _log(tmp_path)
    first = np.mean([r["mel"] for r in log[:3]])
    last = np.mean([r["mel"] for r in log[-3:]])
    assert "d_loss" not in log[-1]  # still in the reconstruction-only warm-up
    assert last < 0.8 * first, (first, last)
    stft_first = np.mean([r["stft"] for r in log[:3]])  # the recipe's pitch term is trained
    assert np.mean([r["stft"] for r in log[-3:]]) < 0.9 * stft_first
    log_first = np.mean([r["log_stft"] for r in log[:3]])  # the full-band log term too
    assert np.mean([r["log_stft"] for r in log[-3:]]) < 0.9 * log_first


def test_gan_branch_runs_and_checkpoint_loads_as_codec(manifest, tmp_path) -> None:
    recipe = _recipe(manifest, "train.steps=4", "loss.adversarial_start=2")
    result = train(codec_task.TASK, recipe, out_dir=tmp_path)
    log = _log(tmp_path)
    assert "d_loss" not in log[1] and all(math.isfinite(r["d_loss"]) for r in log[2:])
    assert all(math.isfinite(r["adversarial"]) for r in log[2:])
    loaded = ckpt.load_checkpoint(tmp_path)
    critic = loaded.state["critic"]
    assert critic["optimizer"]["state"]  # the discriminator's Adam moments are saved
    assert any(k.startswith("discriminator.") for k in critic["model"])

    codec = Codec.load(result.checkpoint)
    assert codec.sample_rate == SR and codec.num_codebooks == 4 and codec.cardinality == 32
    trained = result.model.state_dict()
    for k, v in codec.state_dict().items():
        assert torch.equal(v, trained[k]), k
    wav = torch.randn(1, 1, 64 * 50) * 0.1
    codes = codec.encode(wav)
    assert codes.shape == (1, 4, 50) and int(codes.max()) < 32
    assert codec.decode(codes).shape == (1, 1, 64 * 50)


def test_autoencoder_warm_up_then_quantized(manifest, tmp_path) -> None:
    recipe = _recipe(manifest, "train.steps=5", "loss.quantize_start=3")
    assert parse_recipe(RECIPE, codec_task.CodecRecipe, QUIET).loss.quantize_start == 3000
    result = train(codec_task.TASK, recipe, out_dir=tmp_path)
    log = _log(tmp_path)
    assert [r["commitment"] for r in log[:3]] == [0.0] * 3
    assert all(r["commitment"] > 0 for r in log[3:])
    # The codebooks were fitted in the warm-up too (k-means on the first batch, then EMA).
    assert all(float(layer.codebook.inited) == 1 for layer in result.model.quantizer.layers)


def test_unquantized_forward_decodes_the_latent() -> None:
    codec = build_codec(CodecConfig.tiny()).train()
    wav = torch.randn(2, 1, 64 * 20) * 0.1
    plain = codec(wav, quantize=False)
    with torch.no_grad():
        expected = codec.decoder(codec.encoder(wav))[..., : wav.shape[-1]]
    torch.testing.assert_close(plain.audio, expected)
    assert float(plain.commit_loss) == 0 and plain.codes.shape == (2, 4, 20)
    quantized = codec(wav)
    assert float(quantized.commit_loss) > 0
    assert not torch.allclose(quantized.audio, plain.audio)


def test_resume_is_bit_identical(manifest, tmp_path) -> None:
    common = ["loss.adversarial_start=1", "train.checkpoint_every=2"]
    train(codec_task.TASK, _recipe(manifest, *common, "train.steps=4"), out_dir=tmp_path / "a")
    interrupted = tmp_path / "b"
    train(codec_task.TASK, _recipe(manifest, *common, "train.steps=2"), out_dir=interrupted)
    train(
        codec_task.TASK,
        _recipe(manifest, *common, "train.steps=4"),
        out_dir=interrupted,
        resume=True,
    )
    final = "checkpoints/step_000004"
    for name in (ckpt.MODEL, ckpt.STATE_TENSORS):
        a = load_file(tmp_path / "a" / final / name)
        b = load_file(interrupted / final / name)
        assert a.keys() == b.keys()  # state tensors: both optimizers' moments, RNG states
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}: {k}"


def test_32khz_recipe_is_encodec_32khz() -> None:
    recipe = parse_recipe(REPO / "recipes" / "codec_32khz.toml", codec_task.CodecRecipe)
    assert recipe.model == CodecConfig.encodec_32khz()  # the name is not compared
    assert recipe.model.frame_rate == 50 and recipe.model.hop_length == 640
