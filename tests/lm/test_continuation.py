"""MusicGenerator.generate_continuation with audio prompts of different lengths."""

from __future__ import annotations

import torch

from audiogen.pipeline import MusicGenerator

from . import hf_peers


def test_continuation_batch_of_different_lengths(tmp_path):
    hf = hf_peers.musicgen()
    g = torch.Generator().manual_seed(0)
    for name, buf in hf.audio_encoder.named_buffers():
        if name.endswith("codebook.embed"):
            buf.copy_(torch.randn(buf.shape, generator=g))
    hf.save_pretrained(tmp_path / "hf")
    from tests.test_pipeline import _tokenizer

    _tokenizer().save_pretrained(tmp_path / "hf")
    gen = MusicGenerator.from_hf(tmp_path / "hf", device="cpu", dtype=torch.float32)
    gen.set_generation_params(duration=0.12, use_sampling=False)
    sr = gen.sample_rate
    t = torch.arange(int(0.06 * sr)) / sr
    short = 0.2 * torch.sin(2 * torch.pi * 50 * t[: int(0.02 * sr)])[None]
    long = 0.2 * torch.sin(2 * torch.pi * 80 * t)[None]
    texts = ["a slow irish air", "fast jig on fiddle"]
    wav = gen.generate_continuation([short, long], sr, texts)
    frames = round(0.12 * gen.frame_rate)
    assert wav.shape[0] == 2 and wav.shape[-1] == frames * sr // gen.frame_rate
    for i, audio in enumerate([short, long]):
        alone = gen.generate_continuation(audio, sr, texts[i : i + 1])
        assert torch.allclose(wav[i], alone[0], atol=1e-5)
