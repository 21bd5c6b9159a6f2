"""`audiogen compose`: key, meter and bar constraints, primed continuation, clean errors,
rendering and arranging."""

from __future__ import annotations

import dataclasses

import pretty_midi
import pytest
import torch

from audiogen.cli import main
from audiogen.melody.compose import parse_description, resolve_request
from audiogen.melody.data import melody_from_midi, write_midi
from audiogen.melody.keys import Key, parse_key
from audiogen.melody.markov import MarkovModel
from audiogen.melody.model import MelodyModelConfig, build_model, save_model
from audiogen.melody.tokens import CONDITION_LEN, get_tokenizer


@pytest.fixture(scope="module")
def markov_dir(tunes, tmp_path_factory):
    tok = get_tokenizer()
    seqs = [tok.encode(m.transpose(s)) for m in tunes for s in range(-5, 7)]
    model = MarkovModel.fit(
        seqs, vocab_size=tok.vocab_size, order=5, pad_id=tok.pad_id, scored_from=CONDITION_LEN
    )
    return save_model(
        model, MelodyModelConfig(kind="markov", order=5), tmp_path_factory.mktemp("mk")
    )


@pytest.fixture(scope="module")
def transformer_dir(tmp_path_factory):
    torch.manual_seed(0)
    cfg = MelodyModelConfig(kind="transformer", dim=32, num_layers=1, num_heads=2, ffn_dim=64)
    return save_model(build_model(cfg), cfg, tmp_path_factory.mktemp("tr"))


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["compose", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    "key,mode,meter,bars,key_number",
    [("E", "minor", "6/8", 8, 16), ("Bb", None, "3/4", 5, 10), ("D", "dorian", "4/4", 4, 0)],
)
@pytest.mark.parametrize("which", ["markov", "transformer"])
def test_key_meter_and_bars(
    which, key, mode, meter, bars, key_number, markov_dir, transformer_dir, tmp_path, capsys
):
    model = markov_dir if which == "markov" else transformer_dir
    out = tmp_path / "m.mid"
    args = ["a tune", "--key", key, "--meter", meter, "--bars", bars, "--model", model, "-o", out]
    rc, stdout, err = _run(capsys, *args, *(["--mode", mode] if mode else []), "--seed", 3)
    assert rc == 0, err
    assert f"{bars} bars of {meter}" in stdout
    pm = pretty_midi.PrettyMIDI(str(out))
    assert [k.key_number for k in pm.key_signature_changes] == [key_number]
    ts = pm.time_signature_changes
    assert [(t.numerator, t.denominator) for t in ts] == [tuple(map(int, meter.split("/")))]
    mel = melody_from_midi(out)
    assert mel.num_bars == bars and mel.end == pytest.approx(bars * mel.bar_length)
    requested = parse_key(key, mode)
    assert mel.key == requested  # read back from the signature and the (tonic) final note
    assert all(n.pitch % 12 in requested.pitch_classes for n in mel.notes)
    assert mel.notes[-1].pitch % 12 == requested.tonic
    assert all(55 <= n.pitch <= 84 for n in mel.notes)
    assert all(
        a.onset + a.duration <= b.onset + 1e-9
        for a, b in zip(mel.notes, mel.notes[1:], strict=False)
    )


def test_description_sets_key_meter_style():
    assert parse_description("an Irish reel in D major") == {
        "key": Key(2, "major"),
        "meter": (2, 2),
        "tempo": 200.0,
        "style": "irish",
    }
    req = resolve_request("a slip jig in e minor", meter="9/8")
    assert (req.key, req.meter, req.style) == (Key(4, "minor"), (9, 8), "none")
    assert resolve_request("a german waltz", key="F").key == Key(5, "major")


def test_primed_continuation_starts_with_the_prime(tunes, markov_dir, tmp_path, capsys):
    prime = tunes[1]  # 6/8, 8 bars
    prime_path = write_midi(prime, tmp_path / "prime.mid")
    out = tmp_path / "cont.mid"
    rc, _, err = _run(capsys, "--prime", prime_path, "--bars", 4, "--model", markov_dir, "-o", out)
    assert rc == 0, err
    mel = melody_from_midi(out)
    assert (mel.key, mel.meter) == (prime.key, prime.meter)
    n = len(prime.notes)
    assert len(mel.notes) > n
    for a, b in zip(mel.notes[: n - 1], prime.notes[: n - 1], strict=True):
        assert a.pitch == b.pitch
        assert a.onset == pytest.approx(b.onset) and a.duration == pytest.approx(b.duration)
    assert mel.notes[n - 1].pitch == prime.notes[-1].pitch
    assert mel.num_bars == prime.num_bars + 4


def _drums_only(path):
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(100, 36, 0.0, 0.5))
    pm.instruments.append(drums)
    pm.write(str(path))
    return path


@pytest.mark.parametrize(
    "case,match",
    [
        ("garbage", "not a MIDI file"),
        ("truncated", "malformed MIDI"),
        ("drums", "no pitched notes"),
        ("key", "unknown key 'H# major'"),
        ("meter", "unsupported meter"),
        ("suffix", "must end in"),
        ("model", "no such melody model"),
    ],
)
def test_bad_inputs_are_clean_errors(case, match, markov_dir, tunes, tmp_path, capsys):
    out = tmp_path / "out.mid"
    args = ["--model", markov_dir, "-o", out]
    if case == "garbage":
        (tmp_path / "g.mid").write_bytes(b"this is not midi at all")
        args += ["--prime", tmp_path / "g.mid"]
    elif case == "truncated":
        good = write_midi(tunes[0], tmp_path / "t.mid").read_bytes()
        (tmp_path / "t.mid").write_bytes(good[:40])
        args += ["--prime", tmp_path / "t.mid"]
    elif case == "drums":
        args += ["--prime", _drums_only(tmp_path / "d.mid")]
    elif case == "key":
        args += ["--key", "H# major"]
    elif case == "meter":
        args += ["--meter", "7/16"]
    elif case == "suffix":
        args[-1] = tmp_path / "out.wav"
    elif case == "model":
        args[1] = tmp_path / "nope"
    rc, stdout, err = _run(capsys, *args)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], err
    assert "Traceback" not in err and not out.exists() and not (tmp_path / "out.wav").exists()


def test_render(markov_dir, tmp_path, capsys):
    import soundfile as sf

    out, wav = tmp_path / "m.mid", tmp_path / "m.wav"
    args = ["--bars", 2, "--tempo", 240, "--model", markov_dir, "-o", out, "--render", wav]
    rc, _, err = _run(capsys, *args, "--instrument", "violin")
    assert rc == 0, err
    info = sf.info(str(wav))
    mel = melody_from_midi(out)
    assert info.duration >= mel.end * 60 / 240 - 0.05


def test_arrange_needs_an_audio_model(markov_dir, tmp_path, capsys, monkeypatch):
    import audiogen.pipeline

    monkeypatch.setattr(audiogen.pipeline, "ASSETS", tmp_path / "no_assets")  # no bundle
    rc, _, err = _run(
        capsys, "--arrange", "a fiddle tune", "--model", markov_dir, "-o", tmp_path / "a.wav"
    )
    assert rc == 2 and "--model-audio" in err and not (tmp_path / "a.wav").exists()


def test_arrange_with_a_random_generator(markov_dir, tmp_path, capsys):
    import soundfile as sf

    from audiogen.codecs import CodecConfig, build_codec
    from audiogen.lm.config import tiny_config
    from audiogen.musicgen import MelodySpec, ModelSpec, MusicGenModel, TextSpec
    from audiogen.pipeline import MusicGenerator

    torch.manual_seed(0)
    codec = build_codec(CodecConfig.tiny().replace(ratios=(5, 4, 8), kmeans_init=False))
    # No text encoder (the prompt is then unused): loading MiniLM would dominate the test.
    lm = tiny_config(num_codebooks=codec.num_codebooks, cardinality=codec.cardinality)
    spec = ModelSpec(
        lm=dataclasses.replace(lm, cross_attention=False),
        text=TextSpec(encoder="none"),
        melody=MelodySpec(enabled=True, chroma_rate=12.5, n_fft=2048),
        sample_rate=codec.sample_rate,
        frame_rate=codec.frame_rate,
    )
    MusicGenerator(model=MusicGenModel.build(spec), codec=codec, device="cpu").save(
        tmp_path / "gen"
    )
    out = tmp_path / "arr.wav"
    args = ["an air in G", "--bars", 1, "--meter", "2/4", "--tempo", 120, "--model", markov_dir]
    rc, stdout, err = _run(
        capsys, *args, "--arrange", "a fiddle tune", "--model-audio", tmp_path / "gen", "-o", out
    )
    assert rc == 0, err
    assert (tmp_path / "arr.mid").is_file()
    assert sf.info(str(out)).duration == pytest.approx(1.0, abs=0.05)
