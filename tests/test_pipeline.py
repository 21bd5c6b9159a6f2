"""MusicGenerator against HF transformers' MusicGen on the same random weights."""

from __future__ import annotations

import pytest
import torch

from audiogen.errors import UserError
from audiogen.pipeline import MusicGenerator, null_melody

WORDS = "a slow fast irish reel jig air on fiddle flute piano in d major minor with drums".split()


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def _hf_dir(tmp_path, melody: bool):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "lm"))
    import hf_peers

    hf = hf_peers.musicgen_melody() if melody else hf_peers.musicgen()
    # HF initialises EnCodec codebooks to zeros (k-means fills them in training), which
    # would make decoded audio independent of the codes; give them random vectors.
    g = torch.Generator().manual_seed(0)
    for name, buf in hf.audio_encoder.named_buffers():
        if name.endswith("codebook.embed"):
            buf.copy_(torch.randn(buf.shape, generator=g))
    hf.save_pretrained(tmp_path / "hf")
    tok = _tokenizer()
    tok.save_pretrained(tmp_path / "hf")
    if melody:
        from transformers import MusicgenMelodyFeatureExtractor

        MusicgenMelodyFeatureExtractor().save_pretrained(tmp_path / "hf")
    return hf, tok, hf_peers.K


PROMPTS = ["a slow irish air on fiddle", "fast jig"]


def test_from_hf_greedy_audio_equals_hf_generate(tmp_path):
    hf, tok, k = _hf_dir(tmp_path, melody=False)
    frames = 12
    enc = tok(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = hf.generate(
            **enc, do_sample=False, guidance_scale=3.0, max_new_tokens=frames + k - 1
        )  # [B, C, T]
    gen = MusicGenerator.from_hf(tmp_path / "hf", device="cpu", dtype=torch.float32)
    gen.set_generation_params(duration=frames / gen.frame_rate, use_sampling=False, cfg_coef=3.0)
    wav = gen.generate(PROMPTS)
    assert wav.shape == ref.shape
    assert (wav - ref).abs().max() < 1e-4
    assert ref.std() > 1e-3  # real audio, not a constant


def test_from_hf_melody_greedy_audio_equals_hf_generate(tmp_path):
    from transformers import MusicgenMelodyFeatureExtractor

    hf, tok, k = _hf_dir(tmp_path, melody=True)
    frames = 10
    sr = 32000
    t = torch.arange(sr * 2) / sr
    melody = 0.3 * torch.sin(2 * torch.pi * 293.66 * t) * (t < 1) + 0.3 * torch.sin(
        2 * torch.pi * 440.0 * t
    ) * (t >= 1)
    prompts = ["a slow irish air", "fast jig on flute"]
    enc = tok(prompts, padding=True, return_tensors="pt")
    feats = MusicgenMelodyFeatureExtractor()(
        [melody.numpy()] * 2, sampling_rate=sr, return_tensors="pt"
    )
    with torch.no_grad():
        ref = hf.generate(
            **enc,
            input_features=feats["input_features"],
            do_sample=False,
            guidance_scale=3.0,
            max_new_tokens=frames + k - 1,
        )
    gen = MusicGenerator.from_hf(tmp_path / "hf", device="cpu", dtype=torch.float32)
    gen.set_generation_params(duration=frames / gen.frame_rate, use_sampling=False)
    wav = gen.generate_with_melody(prompts, melody[None], melody_sample_rate=sr)
    assert wav.shape == ref.shape
    assert (wav - ref).abs().max() < 1e-4


def test_save_load_roundtrip_and_sampling_seed(tmp_path):
    _hf_dir(tmp_path, melody=False)
    gen = MusicGenerator.from_hf(tmp_path / "hf", device="cpu")
    gen.save(tmp_path / "ours")
    again = MusicGenerator.load(tmp_path / "ours", device="cpu")
    for g in (gen, again):
        g.set_generation_params(duration=0.08, top_k=5)
    a = gen.generate(PROMPTS, seed=7)
    b = again.generate(PROMPTS, seed=7)
    assert torch.equal(a, b)
    c = again.generate(PROMPTS, seed=8)
    assert not torch.equal(a, c)
    # The conditioned and unconditioned branches matter: another prompt, other audio.
    d = again.generate(["piano with drums", "d minor"], seed=7)
    assert not torch.equal(a, d)


def test_continuation_keeps_prompt_codes(tmp_path):
    _hf_dir(tmp_path, melody=False)
    gen = MusicGenerator.from_hf(tmp_path / "hf", device="cpu")
    gen.set_generation_params(duration=0.1, top_k=5)
    sr = gen.sample_rate
    prompt = 0.2 * torch.sin(2 * torch.pi * 50 * torch.arange(int(0.05 * sr)) / sr)[None]
    codes_in = gen.codec.encode(prompt[None])
    codes = gen.generate_codes(["a fiddle reel"], prompt_codes=codes_in, seed=0)
    assert codes.shape[-1] == round(0.1 * gen.frame_rate)
    assert torch.equal(codes[..., : codes_in.shape[-1]], codes_in)
    wav = gen.generate_continuation(prompt, sr, ["a fiddle reel"], seed=0)
    assert torch.allclose(wav, gen.codec.decode(codes), atol=1e-6)


def test_load_errors(tmp_path):
    with pytest.raises(UserError, match="not a generator directory"):
        MusicGenerator.load(tmp_path)
    with pytest.raises(UserError):
        MusicGenerator.from_hf(tmp_path / "missing")


def test_generation_params_are_checked_before_they_apply():
    import numpy as np

    from audiogen.pipeline import GenerationParams, validate_params

    ok = GenerationParams(top_k=np.int64(5), cfg_coef=np.float32(2.0), melody_cfg_coef=6)
    assert validate_params(ok) is ok  # numpy numbers are numbers
    for bad, message in [
        (dict(top_k=2.5), "top_k must be a whole number"),
        (dict(top_k=True), "top_k must be a whole number"),
        (dict(cfg_coef="3"), "cfg_coef must be a number"),
        (dict(tempo_cfg_coef=float("nan")), "tempo_cfg_coef must be a finite number"),
        (dict(temperature=float("inf")), "temperature must be a finite number"),
        (dict(duration=0), "duration must be > 0"),
    ]:
        with pytest.raises(UserError, match=message):
            validate_params(GenerationParams(**bad))


def test_a_clocked_model_saves_loads_and_follows_the_prompts_tempo(tmp_path):
    """A model with a beat clock: the prompt's tempo reaches every branch that keeps the
    caption (plain CFG and the melody's own guidance), survives save / load, and a trained
    (here: random) clock changes what is generated while a prompt without a tempo does not
    see it."""
    import dataclasses

    from audiogen.codecs import CodecConfig, build_codec
    from audiogen.lm.config import tiny_config
    from audiogen.musicgen import MelodySpec, ModelSpec, MusicGenModel, TempoSpec, TextSpec

    torch.manual_seed(0)
    codec = build_codec(CodecConfig.tiny().replace(ratios=(5, 4, 8), kmeans_init=False))
    lm = tiny_config(num_codebooks=codec.num_codebooks, cardinality=codec.cardinality)
    spec = ModelSpec(
        lm=dataclasses.replace(lm, cross_attention=False),
        text=TextSpec(encoder="none"),
        melody=MelodySpec(enabled=True, chroma_rate=12.5, n_fft=2048, fuse="sum"),
        tempo=TempoSpec(enabled=True),
        sample_rate=codec.sample_rate,
        frame_rate=codec.frame_rate,
    )
    model = MusicGenModel.build(spec)
    torch.nn.init.normal_(model.melody.proj.weight)
    MusicGenerator(model=model, codec=codec, device="cpu").save(tmp_path / "silent")
    torch.nn.init.normal_(model.tempo.proj.weight, std=3.0)
    MusicGenerator(model=model, codec=codec, device="cpu").save(tmp_path / "gen")
    silent = MusicGenerator.load(tmp_path / "silent", device="cpu", dtype="fp32")
    gen = MusicGenerator.load(tmp_path / "gen", device="cpu", dtype="fp32")
    assert torch.equal(gen.model.tempo.proj.weight, model.tempo.proj.weight)
    chroma = torch.eye(12)[[0, 4, 7, 4, 0, 4, 7, 4]]
    for g in (silent, gen):
        g.set_generation_params(duration=0.5, top_k=5, cfg_coef=3.0, melody_cfg_coef=6.0)

    def codes(g, prompt, melody=None):
        return g.generate_codes([prompt], chromas=None if melody is None else [melody], seed=3)

    # An untrained (zero) clock is a no-op; a trained one moves the output, with or without
    # the melody; a prompt that states no tempo gets no clock.
    assert torch.equal(codes(silent, "reel, 120 bpm"), codes(silent, "reel"))
    assert not torch.equal(codes(gen, "reel, 120 bpm"), codes(gen, "reel"))
    assert not torch.equal(codes(gen, "reel, 120 bpm"), codes(gen, "reel, 80 bpm"))
    assert not torch.equal(codes(gen, "reel, 120 bpm", chroma), codes(gen, "reel", chroma))
    assert torch.equal(codes(gen, "reel"), codes(silent, "reel"))

    # The clock's own guidance scale: one more branch (the caption without its clock), after
    # the melody's, only for prompts that state a tempo; at cfg_coef it is plain CFG.
    def branches(g, prompt, melody=None):
        mel = None if melody is None else [melody]
        cond, null, partials, coefs = g.branch_conditions([prompt], mel, 8)
        return cond, partials, coefs

    gen.set_generation_params(tempo_cfg_coef=8.0)
    cond, partials, coefs = branches(gen, "reel, 120 bpm", chroma)
    assert coefs == [6.0, 8.0] and len(partials) == 2
    m = gen.model
    text_tok, mel_tok = m.tokenize(["reel, 120 bpm"], [chroma])
    tempo_tok = m.tokenize_tempo(["reel, 120 bpm"], m.spec.lm.pattern().seq_len(8))
    no_melody = m.encode(text_tok, null_melody(mel_tok), tempo_tok)
    neither = m.encode(text_tok, null_melody(mel_tok), tempo_tok.null())
    assert torch.equal(partials[0].frame, no_melody.frame)
    assert torch.equal(partials[1].frame, neither.frame)
    assert not torch.equal(no_melody.frame, neither.frame)
    assert branches(gen, "reel, 120 bpm")[2] == [8.0]
    assert branches(gen, "reel", chroma)[2] == [6.0]
    assert branches(gen, "reel")[2] == []
    guided = codes(gen, "reel, 120 bpm")
    gen.set_generation_params(tempo_cfg_coef=3.0)
    assert branches(gen, "reel, 120 bpm")[2] == []
    plain = codes(gen, "reel, 120 bpm")
    gen.set_generation_params(tempo_cfg_coef=None)
    assert torch.equal(codes(gen, "reel, 120 bpm"), plain)
    assert not torch.equal(guided, plain)
