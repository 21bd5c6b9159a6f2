"""The demo's request handler without a browser: generation, caps, bad uploads."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from audiogen import midi
from audiogen.cli import main
from audiogen.demo import DemoHandler, Limits
from audiogen.errors import UserError


@pytest.fixture(scope="module")
def handler(generator):
    return DemoHandler(generator, Limits(max_duration=4.0, max_prompt_chars=40))


def _decode(out) -> np.ndarray:
    data, sr = sf.read(io.BytesIO(out.wav_bytes), dtype="float32", always_2d=True)
    assert sr == out.sample_rate
    return data


def test_generates_wav_of_the_requested_length_and_a_spectrogram(handler):
    out = handler("a fiddle reel", 1.0, None, 3.0, 7)
    data = _decode(out)
    assert data.shape[0] == out.num_samples
    assert out.num_samples == pytest.approx(out.sample_rate, abs=out.sample_rate * 0.02)
    assert data.std() > 1e-4  # audio, not silence
    assert out.spectrogram.ndim == 3 and out.spectrogram.shape[2] == 3
    assert out.spectrogram.dtype == np.uint8 and out.spectrogram.std() > 0
    assert out.melody_image is None
    assert out.seed == 7 and "seed 7" in out.status and "1.0 s of audio" in out.status


def test_seed_makes_requests_repeatable(handler):
    a = handler("a fiddle reel", 0.5, None, 3.0, 11)
    b = handler("a fiddle reel", 0.5, None, 3.0, 11)
    c = handler("a fiddle reel", 0.5, None, 3.0, 12)
    assert a.wav_bytes == b.wav_bytes
    assert a.wav_bytes != c.wav_bytes
    # -1 (the page's default) and blank pick a fresh seed and report it.
    d = handler("a fiddle reel", 0.5, None, 3.0, -1)
    assert 0 <= d.seed < 2**31 and f"seed {d.seed}" in d.status
    assert handler.validate("x", 0.5, None, 3.0, None).seed >= 0


def test_empty_prompt_is_unconditional(handler):
    out = handler("   ", 0.5, None, 1.0, 0)
    assert "unconditional" in out.status and _decode(out).shape[0] == out.num_samples


def test_midi_melody_shows_its_piano_roll(handler, melody_mid):
    out = handler("a flute air", 1.0, melody_mid, 3.0, 1)
    assert out.melody_image is not None and out.melody_image.shape[2] == 3
    assert f"melody {melody_mid.name}" in out.status
    # The melody conditions the audio: the same seed without it gives other audio.
    assert out.wav_bytes != handler("a flute air", 1.0, None, 3.0, 1).wav_bytes


def test_melody_cfg_changes_the_audio_and_resets_to_the_models_default(handler, melody_mid):
    base = handler("a flute air", 1.0, melody_mid, 3.0, 1)
    strong = handler("a flute air", 1.0, melody_mid, 3.0, 1, 12.0)
    assert "melody CFG 12" in strong.status and strong.wav_bytes != base.wav_bytes
    # The next request without one gets the model's default again, not the last visitor's.
    assert handler("a flute air", 1.0, melody_mid, 3.0, 1).wav_bytes == base.wav_bytes
    assert handler.generator.params.melody_cfg_coef == handler.defaults.melody_cfg_coef


def test_audio_melody_shows_its_chroma(handler, tmp_path):
    sr = 16000
    t = np.arange(sr) / sr
    path = tmp_path / "hum.wav"
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440.0 * t), sr)
    out = handler("a hummed tune", 1.0, path, 3.0, 1)
    assert out.melody_image is not None and "melody hum.wav" in out.status


@pytest.mark.parametrize(
    "args, message",
    [
        (("x" * 41, 1.0, None, 3.0, 0), "the prompt has 41 characters; the limit is 40"),
        (("jig", 4.5, None, 3.0, 0), "duration 4.5 s is over this server's limit of 4 s"),
        (("jig", 0.0, None, 3.0, 0), "duration must be a number of seconds > 0"),
        (("jig", None, None, 3.0, 0), "duration must be a number of seconds > 0"),
        (("jig", float("nan"), None, 3.0, 0), "duration must be a number of seconds > 0"),
        (("jig", 1.0, None, 25.0, 0), "CFG coefficient must be between 0 and 20"),
        (("jig", 1.0, None, 3.0, 0, -1.0), "melody CFG coefficient must be between 0 and 20"),
        (("jig", 1.0, None, 3.0, 1.5), "seed must be a whole number"),
        (("jig", 1.0, None, 3.0, 2.0**40), "seed must be a whole number"),
    ],
)
def test_caps_and_bad_values_are_messages(handler, args, message):
    with pytest.raises(UserError, match=message):
        handler(*args)


def _garbage(tmp_path, name: str, data: bytes):
    p = tmp_path / "upload_dir" / name
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("garbage.mid", b"\x00\x01 definitely not MIDI", "garbage.mid: not a MIDI file"),
        ("truncated.mid", b"MThd\x00\x00\x00\x06\x00\x01", "truncated.mid: malformed MIDI"),
        ("noise.wav", bytes(range(256)) * 8, "noise.wav: cannot read audio"),
        ("notes.txt", b"C D E", "notes.txt: unsupported melody file type '.txt'"),
    ],
)
def test_bad_uploads_are_messages_naming_the_file(handler, tmp_path, name, data, message):
    path = _garbage(tmp_path, name, data)
    with pytest.raises(UserError) as err:
        handler("a jig", 1.0, path, 3.0, 0)
    assert str(err.value).startswith(message)
    assert str(path.parent) not in str(err.value)  # the server's temp path stays hidden


def test_midi_without_notes_or_notes_too_late(handler, tmp_path):
    import pretty_midi

    empty = tmp_path / "empty.mid"
    pretty_midi.PrettyMIDI().write(str(empty))
    with pytest.raises(UserError, match="^empty.mid: the file has no pitched notes"):
        handler("a jig", 1.0, empty, 3.0, 0)
    late = tmp_path / "late.mid"
    midi.save_notes([midi.Note(60, 5.0, 6.0)], late)
    with pytest.raises(UserError, match="^late.mid: no notes in the first 1 s"):
        handler("a jig", 1.0, late, 3.0, 0)


def test_melody_for_a_model_without_melody_conditioning(generator, melody_mid):
    from audiogen.musicgen import MelodySpec, MusicGenModel
    from audiogen.pipeline import MusicGenerator

    m = generator.model
    spec = replace(m.spec, melody=MelodySpec(enabled=False))
    no_mel = MusicGenModel(spec=spec, lm=m.lm, text=m.text, melody=None)
    handler = DemoHandler(MusicGenerator(model=no_mel, codec=generator.codec, device="cpu"))
    with pytest.raises(UserError, match="no melody conditioning"):
        handler("a jig", 1.0, melody_mid, 3.0, 0)
    assert handler("a jig", 0.5, None, 3.0, 0).num_samples > 0


def test_handler_is_serialised(handler):
    """A second request waits for the first (the lock guards the generator's params)."""
    import threading

    got = []
    with handler._lock:
        t = threading.Thread(target=lambda: got.append(handler("jig", 0.5, None, 3.0, 0)))
        t.start()
        t.join(timeout=0.5)
        assert t.is_alive() and not got
    t.join(timeout=60)
    assert got and got[0].num_samples > 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "/nonexistent/model"], "not a generator directory"),
        (["--port", "0"], "--port 0"),
        (["--max-duration", "0"], "--max-duration 0"),
    ],
)
def test_serve_user_errors(capsys, extra, message):
    assert main(["serve", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_wav_bytes_clip_and_keep_length():
    from audiogen.demo.handler import wav_bytes

    wav = torch.tensor([[0.0, 0.5, 2.0, -3.0]])
    data, sr = sf.read(io.BytesIO(wav_bytes(wav, 8000)), dtype="float32")
    assert sr == 8000 and data.shape == (4,)
    assert data[2] == pytest.approx(1.0, abs=1e-4) and data[3] == pytest.approx(-1.0, abs=1e-4)


def test_page_queues_one_request_at_a_time_and_shows_errors_as_status(handler):
    from audiogen.demo.app import build_app

    demo = build_app(handler)
    assert not demo.analytics_enabled
    (fn,) = demo.fns.values()
    assert fn.api_name == "generate" and fn.queue and fn.concurrency_limit == 1
    # The page's callback turns a refused request into a status line and empty outputs.
    assert fn.fn("x" * 41, 1.0, None, 3.0, 0) == (
        None,
        None,
        None,
        "error: the prompt has 41 characters; the limit is 40",
    )
    wav, spec, roll, status = fn.fn("a jig", 0.5, None, 3.0, 4)
    assert wav[:4] == b"RIFF" and spec.ndim == 3 and roll is None
    assert status.startswith("generated 0.5 s of audio")
