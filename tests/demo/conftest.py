"""A randomly initialised small generator (MiniLM text + chroma melody + tiny codec) saved
to a temporary directory, standing in for the bundled model in the demo tests."""

from __future__ import annotations

import pytest
import torch


def build_random_generator():
    from audiogen.codecs import CodecConfig, build_codec
    from audiogen.lm.config import tiny_config
    from audiogen.musicgen import MelodySpec, ModelSpec, MusicGenModel, TextSpec
    from audiogen.pipeline import MusicGenerator

    torch.manual_seed(0)
    # 16 kHz, hop 160: 100 codec frames per second keeps a second of audio quick to sample.
    codec = build_codec(CodecConfig.tiny().replace(ratios=(5, 4, 8), kmeans_init=False))
    spec = ModelSpec(
        lm=tiny_config(num_codebooks=codec.num_codebooks, cardinality=codec.cardinality),
        text=TextSpec(encoder="minilm", max_length=32),
        melody=MelodySpec(enabled=True, chroma_rate=12.5, n_fft=2048),
        sample_rate=codec.sample_rate,
        frame_rate=codec.frame_rate,
    )
    return MusicGenerator(model=MusicGenModel.build(spec), codec=codec, device="cpu")


@pytest.fixture(scope="session")
def generator():
    """The random generator itself (the handler tests call it in process)."""
    return build_random_generator()


@pytest.fixture(scope="session")
def model_dir(generator, tmp_path_factory):
    """The same generator as a directory (codec/ + lm/) for ``audiogen serve --model``."""
    out = tmp_path_factory.mktemp("demo_model") / "model"
    generator.save(out)
    return out
