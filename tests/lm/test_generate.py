"""Generation: cached path == plain forward, CFG greedy parity with HF ``generate``."""

import pytest
import torch

from audiogen.lm import MusicLM, tiny_config, transformer
from audiogen.lm.convert import from_hf_musicgen
from audiogen.lm.generate import Conditions, generate
from audiogen.lm.sampling import SamplingParams

from .hf_peers import K, musicgen, musicgen_melody

GREEDY = SamplingParams(top_k=1)


def _capture_codes(hf):
    """HF ``generate`` decodes audio at the end; record the codes it hands the codec."""
    captured = {}
    decode = hf.audio_encoder.decode

    def spy(codes, *args, **kwargs):
        captured["codes"] = codes[0].clone()  # [1, B, K, F] -> [B, K, F]
        return decode(codes, *args, **kwargs)

    hf.audio_encoder.decode = spy
    return captured


def _text(hf, b, sc, seed):
    torch.manual_seed(seed)
    ids = torch.randint(1, 64, (b, sc))
    mask = torch.ones(b, sc, dtype=torch.long)
    mask[1, 2:] = 0  # prompts of different lengths
    with torch.no_grad():
        hidden = hf.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    return ids, mask, hidden


def _project(proj, x):
    return x @ proj["weight"].T + proj["bias"]


@pytest.mark.parametrize("kernels", ["compiled", "torch"])
def test_greedy_cfg_tokens_equal_hf_generate(kernels, monkeypatch):
    # decode steps have 2 x batch rows: the compiled few-row products, and torch's path
    if kernels == "torch":
        monkeypatch.setattr(transformer, "_linear_kernels", dict)
    else:
        assert transformer._linear_kernels(), "the linear kernels did not build"
    hf = musicgen()
    imported = from_hf_musicgen(hf)
    b, sc, f = 2, 5, 12
    ids, mask, hidden = _text(hf, b, sc, seed=3)
    captured = _capture_codes(hf)
    hf.generate(
        input_ids=ids,
        attention_mask=mask,
        guidance_scale=3.0,
        do_sample=False,
        max_new_tokens=f + K - 1,
    )
    cross = _project(imported.text_proj, hidden) * mask[..., None]
    out = generate(
        imported.lm,
        num_frames=f,
        cond=Conditions(cross=cross, cross_mask=mask.bool()),
        cfg_coef=3.0,
        params=GREEDY,
    )
    assert out.codes.shape == (b, K, f)
    assert torch.equal(out.codes, captured["codes"])


def test_melody_greedy_cfg_tokens_equal_hf_generate():
    hf = musicgen_melody()
    imported = from_hf_musicgen(hf)
    b, sc, f, fc = 2, 4, 10, 6
    ids, mask, hidden = _text(hf, b, sc, seed=4)
    chroma = torch.nn.functional.one_hot(torch.randint(0, 12, (b, fc)), 12).float()
    captured = _capture_codes(hf)
    hf.generate(
        input_ids=ids,
        attention_mask=mask,
        input_features=chroma,
        guidance_scale=3.0,
        do_sample=False,
        max_new_tokens=f + K - 1,
    )
    null_chroma = torch.zeros_like(chroma)
    null_chroma[..., 0] = 1  # HF's null melody
    text = _project(imported.text_proj, hidden) * mask[..., None]
    prefix = torch.cat([_project(imported.audio_proj, chroma), text], dim=1)
    null_prefix = torch.cat([_project(imported.audio_proj, null_chroma), torch.zeros_like(text)], 1)
    out = generate(
        imported.lm,
        num_frames=f,
        cond=Conditions(prefix=prefix),
        null_cond=Conditions(prefix=null_prefix),
        cfg_coef=3.0,
        params=GREEDY,
    )
    assert torch.equal(out.codes, captured["codes"])


def _uncached_cfg_logits(lm, seq, t0, cond, null, cfg_coef):
    """CFG-mixed logits of every generation step from plain full forwards."""
    both = torch.cat([seq, seq])
    cross = torch.cat([cond.cross, null.cross])
    mask = torch.cat([cond.cross_mask, null.cross_mask])
    logits = lm(both, cross=cross, cross_mask=mask).logits.float()
    c, u = logits.split(seq.shape[0])
    mixed = u + (c - u) * cfg_coef
    return mixed[:, :, t0 - 1 : seq.shape[-1] - 1]


def test_cached_generation_equals_plain_forward_each_step():
    torch.manual_seed(0)
    cfg = tiny_config()
    lm = MusicLM(config=cfg).eval()
    b, f = 2, 7
    cond = Conditions(
        cross=torch.randn(b, 4, 32), cross_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()
    )
    null = cond.null()
    prompt = torch.randint(0, cfg.cardinality, (b, K, 2))
    out = generate(
        lm,
        num_frames=f,
        cond=cond,
        null_cond=null,
        prompt=prompt,
        cfg_coef=2.5,
        params=SamplingParams(top_k=5),
        generator=torch.Generator().manual_seed(0),
        return_logits=True,
    )
    assert torch.equal(out.codes[..., :2], prompt)  # continuation keeps the prompt
    seq = cfg.pattern().build(out.codes, special_token=cfg.special_token).seq
    with torch.no_grad():
        ref = _uncached_cfg_logits(lm, seq, t0=3, cond=cond, null=null, cfg_coef=2.5)
    assert out.logits.shape == ref.shape
    assert (out.logits - ref).abs().max() < 1e-4


def test_prefix_cached_equals_plain():
    torch.manual_seed(0)
    lm = MusicLM(config=tiny_config(cross_attention=False)).eval()
    prefix = torch.randn(1, 3, 32)
    out = generate(
        lm,
        num_frames=5,
        cond=Conditions(prefix=prefix),
        cfg_coef=1.0,
        params=GREEDY,
        return_logits=True,
    )
    seq = lm.config.pattern().build(out.codes, special_token=32).seq
    with torch.no_grad():
        ref = lm(seq, prefix=prefix).logits[:, :, :-1]
    assert (out.logits - ref).abs().max() < 1e-4


def test_frame_conditions_cached_equal_plain_and_slide_with_the_window():
    """Frame-aligned conditions (the ``sum`` fuse): the cached steps see the frame of the
    position they feed, CFG's null branch sees zeros, and a later window sees the frames
    from where it starts."""
    torch.manual_seed(0)
    lm = MusicLM(config=tiny_config()).eval()
    cross = torch.randn(1, 3, 32)
    cond = Conditions(cross=cross, frame=torch.randn(1, 9, 32))
    null = cond.null()
    assert null.frame.abs().sum() == 0
    out = generate(lm, num_frames=7, cond=cond, cfg_coef=2.0, params=GREEDY, return_logits=True)
    seq = lm.config.pattern().build(out.codes, special_token=32).seq
    with torch.no_grad():
        c = lm(seq, cross=cross, frame=cond.frame).logits
        u = lm(seq, cross=torch.zeros_like(cross), cross_mask=null.cross_mask).logits
    ref = (u + (c - u) * 2.0)[:, :, :-1]
    assert (out.logits - ref).abs().max() < 1e-4
    # Another frame condition changes the output; frames past the sequence are ignored.
    other = Conditions(cross=cross, frame=-cond.frame)
    assert not torch.equal(generate(lm, num_frames=7, cond=other, params=GREEDY).codes, out.codes)

    long = generate(lm, num_frames=12, cond=cond, window=8, extend_stride=4, params=GREEDY)
    first = generate(lm, num_frames=8, cond=cond, params=GREEDY).codes
    second = generate(
        lm, num_frames=8, cond=cond.from_frame(4), prompt=first[..., 4:], params=GREEDY
    ).codes
    assert torch.equal(long.codes[..., :8], first)
    assert torch.equal(long.codes[..., 8:], second[..., 4:])


def test_seeded_sampling_reproducible_and_batched():
    torch.manual_seed(0)
    lm = MusicLM(config=tiny_config()).eval()
    cond = Conditions(cross=torch.randn(3, 4, 32))

    def run(seed):
        return generate(
            lm,
            num_frames=6,
            cond=cond,
            params=SamplingParams(top_k=10, temperature=1.2),
            generator=torch.Generator().manual_seed(seed),
        ).codes

    a, b, c = run(1), run(1), run(2)
    assert a.shape == (3, K, 6) and a.max() < 32 and a.min() >= 0
    assert torch.equal(a, b) and not torch.equal(a, c)
    nucleus = generate(lm, num_frames=4, cond=cond, params=SamplingParams(top_p=0.9))
    assert nucleus.codes.shape == (3, K, 4)


def test_long_form_windows_and_progress():
    torch.manual_seed(0)
    lm = MusicLM(config=tiny_config()).eval()
    cond = Conditions(cross=torch.randn(1, 2, 32))
    calls = []
    out = generate(
        lm,
        num_frames=20,
        cond=cond,
        window=8,
        extend_stride=4,
        params=GREEDY,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert out.codes.shape == (1, K, 20)
    assert out.windows == [8, 8, 8, 8]
    assert calls[-1][0] == calls[-1][1] == out.steps
    # The first window is a plain 8-frame generation; the second continues its last 4 frames.
    first = generate(lm, num_frames=8, cond=cond, params=GREEDY).codes
    assert torch.equal(out.codes[..., :8], first)
    second = generate(lm, num_frames=8, cond=cond, prompt=first[..., 4:], params=GREEDY).codes
    assert torch.equal(out.codes[..., 8:12], second[..., 4:])


def test_prompts_of_different_lengths_equal_one_by_one():
    """Left-aligned prompts of different lengths in one batch give each row what that row
    gives alone (greedy, CFG, cross conditions), and keep every row's prompt frames."""
    torch.manual_seed(0)
    lm = MusicLM(config=tiny_config()).eval()
    b, f, lengths = 3, 9, [2, 6, 0]
    prompt = torch.randint(0, 32, (b, 4, 6))
    cross = torch.randn(b, 3, 32)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    out = generate(
        lm,
        num_frames=f,
        cond=Conditions(cross=cross, cross_mask=mask),
        cfg_coef=3.0,
        prompt=prompt,
        prompt_lengths=lengths,
        params=GREEDY,
    )
    assert out.codes.shape == (b, 4, f) and out.prompt_lengths == lengths
    for i, n in enumerate(lengths):
        alone = generate(
            lm,
            num_frames=f,
            cond=Conditions(cross=cross[i : i + 1], cross_mask=mask[i : i + 1]),
            cfg_coef=3.0,
            prompt=prompt[i : i + 1, :, :n] if n else None,
            params=GREEDY,
        )
        assert torch.equal(out.codes[i], alone.codes[0])
        assert torch.equal(out.codes[i, :, :n], prompt[i, :, :n])
    # The padding after a short prompt is ignored, whatever it holds.
    other = prompt.clone()
    other[0, :, 2:] = 7
    again = generate(
        lm,
        num_frames=f,
        cond=Conditions(cross=cross, cross_mask=mask),
        prompt=other,
        prompt_lengths=lengths,
        params=GREEDY,
    )
    ref = generate(
        lm,
        num_frames=f,
        cond=Conditions(cross=cross, cross_mask=mask),
        prompt=prompt,
        prompt_lengths=lengths,
        params=GREEDY,
    )
    assert torch.equal(again.codes, ref.codes)


def test_partial_branch_guidance_equals_its_formula_each_step():
    """A third CFG branch (the conditions minus the melody): the mixed logits of every step
    are ``u + (p - u) * cfg + (c - p) * partial_coef`` of plain forwards, and equal scales give
    plain CFG's tokens."""
    torch.manual_seed(0)
    lm = MusicLM(config=tiny_config()).eval()
    cross = torch.randn(2, 3, 32)
    frame = torch.randn(2, 9, 32)
    cond = Conditions(cross=cross, frame=frame)
    partial = Conditions(cross=cross, frame=torch.zeros_like(frame))  # the melody nulled
    null = cond.null()
    out = generate(
        lm,
        num_frames=7,
        cond=cond,
        cfg_coef=2.0,
        partial_cond=partial,
        partial_coef=5.0,
        params=SamplingParams(top_k=4),
        generator=torch.Generator().manual_seed(0),
        return_logits=True,
    )
    seq = lm.config.pattern().build(out.codes, special_token=32).seq
    with torch.no_grad():
        c = lm(seq, cross=cross, frame=frame).logits
        p = lm(seq, cross=cross, frame=partial.frame).logits
        u = lm(seq, cross=torch.zeros_like(cross), cross_mask=null.cross_mask).logits
    ref = (u + (p - u) * 2.0 + (c - p) * 5.0)[:, :, :-1]
    assert (out.logits - ref).abs().max() < 1e-4
    # The melody's scale matters; equal scales are plain CFG.
    kw = dict(num_frames=7, cond=cond, cfg_coef=2.0, params=GREEDY, return_logits=True)
    plain = generate(lm, **kw)
    same = generate(lm, **kw, partial_cond=partial, partial_coef=2.0)
    assert torch.equal(same.codes, plain.codes)
    assert (same.logits - plain.logits).abs().max() < 1e-4
    more = generate(lm, **kw, partial_cond=partial, partial_coef=8.0)
    assert (more.logits - plain.logits).abs().max() > 1e-2


def test_two_partial_branches_chain_their_scales():
    """Two partial branches (caption + clock + melody, caption + clock, caption, null): the
    mixed logits are ``u + (p2 - u) * cfg + (p1 - p2) * coef2 + (c - p1) * coef1``, and all
    scales equal give plain CFG's tokens."""
    torch.manual_seed(1)
    lm = MusicLM(config=tiny_config()).eval()
    cross = torch.randn(1, 3, 32)
    melody, clock = torch.randn(1, 9, 32), torch.randn(1, 9, 32)
    cond = Conditions(cross=cross, frame=melody + clock)
    p1 = Conditions(cross=cross, frame=clock)  # the melody nulled
    p2 = Conditions(cross=cross, frame=torch.zeros_like(clock))  # the clock too
    null = cond.null()
    kw = dict(num_frames=6, cond=cond, cfg_coef=3.0, return_logits=True)
    out = generate(
        lm,
        **kw,
        partial_cond=[p1, p2],
        partial_coef=[6.0, 4.0],
        params=SamplingParams(top_k=4),
        generator=torch.Generator().manual_seed(0),
    )
    seq = lm.config.pattern().build(out.codes, special_token=32).seq
    with torch.no_grad():
        c, l1, l2 = (lm(seq, cross=cross, frame=x.frame).logits for x in (cond, p1, p2))
        u = lm(seq, cross=torch.zeros_like(cross), cross_mask=null.cross_mask).logits
    ref = (u + (l2 - u) * 3.0 + (l1 - l2) * 4.0 + (c - l1) * 6.0)[:, :, :-1]
    assert (out.logits - ref).abs().max() < 1e-4
    plain = generate(lm, **kw, params=GREEDY)
    same = generate(lm, **kw, params=GREEDY, partial_cond=[p1, p2], partial_coef=[3.0, 3.0])
    assert torch.equal(same.codes, plain.codes)
    with pytest.raises(ValueError, match="2 partial_cond branches but 1 coefs"):
        generate(lm, **kw, partial_cond=[p1, p2], partial_coef=[6.0])


def test_partial_branch_needs_its_coefficient_and_cfg():
    lm = MusicLM(config=tiny_config()).eval()
    cond = Conditions(cross=torch.randn(1, 3, 32))
    with pytest.raises(ValueError, match="go together"):
        generate(lm, num_frames=3, cond=cond, partial_cond=cond)
    with pytest.raises(ValueError, match="needs classifier-free guidance"):
        generate(lm, num_frames=3, cond=cond, cfg_coef=1.0, partial_cond=cond, partial_coef=2.0)
    with pytest.raises(ValueError, match="batch sizes"):
        other = Conditions(cross=torch.randn(2, 3, 32))
        generate(lm, num_frames=3, cond=cond, partial_cond=other, partial_coef=2.0)
