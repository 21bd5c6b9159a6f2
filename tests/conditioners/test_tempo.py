"""The beat clock: tempo parsing, the clock's phase, and its place among the conditions."""

from __future__ import annotations

import math

import pytest
import torch

from audiogen.conditioners.tempo import TempoConditioner, beat_clock, bpm_from_text
from audiogen.errors import UserError


@pytest.mark.parametrize(
    "text, bpm",
    [
        ("a reel in D major played on fiddle, 112 bpm", 112.0),
        ("solo harp (6/8, 96 bpm)", 96.0),
        ("lofi beat at 85BPM", 85.0),
        ("a waltz, 72.5 beats per minute", 72.5),
        ("techno 128-bpm groove", 128.0),
        ("first 90 bpm then 120 bpm", 90.0),
        ("a 4/4 march", None),
        ("2 bpm drone", None),  # outside 20-400: not a tempo
        ("a bpmless tune", None),
        ("version1.2 bpm", None),  # a number glued to a word is not a tempo
        ("", None),
        (None, None),
    ],
)
def test_bpm_from_text(text, bpm) -> None:
    assert bpm_from_text(text) == bpm


def test_clock_ticks_once_per_beat_and_windows_continue_the_piece() -> None:
    rate, bpm = 50.0, torch.tensor([100.0, 75.0])
    feats = beat_clock(bpm, torch.zeros(2), 200, rate, [1, 2, 3, 4])
    assert feats.shape == (2, 200, 9)
    # 100 bpm at 50 frames/s: a beat every 30 frames; 75 bpm: every 40.
    for row, period in [(0, 30), (1, 40)]:
        torch.testing.assert_close(feats[row, period:], feats[row, :-period], atol=1e-5, rtol=0)
        cos1 = feats[row, :, 0]
        assert torch.isclose(cos1[::period], torch.ones(1), atol=1e-6).all()  # on the beat
        assert (cos1[period // 2] + 1).abs() < 1e-5  # half a beat later: opposite phase
        assert feats[row, :, 8].eq(math.log2(float(bpm[row]) / 100)).all()
    # A window starting 1000 frames into a piece sees that piece's clock from there.
    clock = TempoConditioner(output_dim=8, frame_rate=rate)
    whole = clock.tokenize(["x 100 bpm"], 1100)
    part = clock.tokenize(["x 100 bpm"], 100, start_frames=[1000])
    ref = beat_clock(whole.bpm, whole.beats, 1100, rate, clock.harmonics)[:, 1000:]
    got = beat_clock(part.bpm, part.beats, 100, rate, clock.harmonics)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_clock_starts_silent_and_null_rows_add_nothing() -> None:
    clock = TempoConditioner(output_dim=16, frame_rate=50.0)
    tok = clock.tokenize(["waltz at 90 bpm", "no tempo here", None], 12)
    assert tok.present.tolist() == [True, False, False]
    assert clock(tok).emb.abs().sum() == 0  # zero init: an untrained clock is a no-op
    torch.nn.init.normal_(clock.proj.weight)
    torch.nn.init.normal_(clock.proj.bias)
    out = clock(tok)
    assert out.emb.shape == (3, 12, 16) and out.mask.tolist() == [[True] * 12] + [[False] * 12] * 2
    assert out.emb[0].abs().sum() > 0 and out.emb[1:].abs().sum() == 0
    assert clock(tok.null()).emb.abs().sum() == 0
    with pytest.raises(ValueError, match="positive integers"):
        TempoConditioner(output_dim=4, frame_rate=50.0, harmonics=[1, 0.5])


def test_model_sums_the_clock_into_its_frame_inputs() -> None:
    from audiogen.lm import tiny_config
    from audiogen.musicgen import MelodySpec, ModelSpec, MusicGenModel, TempoSpec, TextSpec

    spec = ModelSpec(
        lm=tiny_config(cross_attention=False),
        text=TextSpec(encoder="none"),
        melody=MelodySpec(enabled=True, fuse="sum", chroma_rate=12.5),
        tempo=TempoSpec(enabled=True, harmonics=[1, 2]),
        frame_rate=50.0,
    )
    model = MusicGenModel.build(spec).eval()
    torch.nn.init.normal_(model.tempo.proj.weight)
    torch.nn.init.normal_(model.melody.proj.weight)
    chroma = torch.eye(12)[[2, 7]]
    cond = model.conditions(["a jig, 120 bpm", None], [chroma, chroma], num_steps=20)
    melody_only = model.conditions([None, None], [chroma, chroma], num_steps=20)
    assert cond.frame.shape == (2, 20, 32)  # the clock is longer than the 8-frame melody
    clock = model.tempo(model.tokenize_tempo(["a jig, 120 bpm"], 20)).emb[0]
    torch.testing.assert_close(cond.frame[0] - melody_only.frame[0], clock)
    torch.testing.assert_close(cond.frame[1], melody_only.frame[1])  # no text, no clock
    with pytest.raises(ValueError, match="num_steps"):
        model.conditions(["a jig, 120 bpm"])
    # The spec round-trips; a config without a tempo section has no clock.
    assert ModelSpec.from_dict(spec.to_dict()).tempo == spec.tempo
    plain = spec.to_dict()
    del plain["tempo"]
    assert ModelSpec.from_dict(plain).tempo.enabled is False
    bad = spec.to_dict()
    bad["tempo"]["harmonics"] = [0]
    with pytest.raises(UserError, match="model config.*harmonics"):
        ModelSpec.from_dict(bad)
