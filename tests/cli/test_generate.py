import sys
from pathlib import Path

import pytest

from audiogen import audio
from audiogen.cli import main

sys.path.insert(0, str(Path(__file__).parents[1]))
from test_pipeline import _hf_dir  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from audiogen.pipeline import MusicGenerator

    tmp = tmp_path_factory.mktemp("gen")
    _hf_dir(tmp, melody=False)
    MusicGenerator.from_hf(tmp / "hf", device="cpu").save(tmp / "model")
    return tmp / "model"


def test_generate_writes_one_file_per_prompt(tmp_path, model_dir, capsys):
    out = tmp_path / "song.wav"
    argv = ["generate", "a fiddle reel", "slow air", "-o", str(out), "--model", str(model_dir)]
    assert main(argv + ["--duration", "0.08", "--seed", "3", "--top-k", "5"]) == 0
    for name in ("song_1.wav", "song_2.wav"):
        wav, sr = audio.load(tmp_path / name)
        assert wav.shape[-1] == pytest.approx(0.08 * sr, abs=sr * 0.02)
    assert not out.exists() and "wrote" in capsys.readouterr().out


def test_generate_prompts_file(tmp_path, model_dir):
    f = tmp_path / "prompts.txt"
    f.write_text("a jig\n\npiano\n")
    out = tmp_path / "x.flac"
    argv = ["generate", "--prompts-file", str(f), "-o", str(out), "--model", str(model_dir)]
    assert main(argv + ["--duration", "0.05"]) == 0
    assert (tmp_path / "x_1.flac").exists() and (tmp_path / "x_2.flac").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "/nonexistent/model"], "not a generator directory"),
        (["--melody", "/nonexistent.mid"], "no such melody file"),
        (["--duration", "0"], "--duration"),
    ],
)
def test_generate_user_errors(tmp_path, model_dir, capsys, extra, message):
    out = tmp_path / "o.wav"
    argv = ["generate", "a jig", "-o", str(out), "--model", str(model_dir)] + extra
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not out.exists()


def test_generate_melody_needs_melody_model(tmp_path, model_dir, melody_mid, capsys):
    out = tmp_path / "o.wav"
    argv = ["generate", "a jig", "-o", str(out), "--model", str(model_dir)]
    assert main(argv + ["--melody", str(melody_mid), "--duration", "0.05"]) == 2
    assert "no melody conditioning" in capsys.readouterr().err
    assert not out.exists()


def test_import_musicgen_then_generate(tmp_path, capsys):
    _hf_dir(tmp_path, melody=True)
    assert main(["import", "musicgen", str(tmp_path / "hf"), "--out", str(tmp_path / "m")]) == 0
    assert "imported MusicGen-melody" in capsys.readouterr().out
    assert (tmp_path / "m" / "lm" / "text_encoder" / "model.safetensors").exists()
    out = tmp_path / "o.wav"
    mel = tmp_path / "mel.mid"
    from audiogen import midi

    midi.save_notes([midi.Note(62, 0.0, 0.5, 90), midi.Note(69, 0.5, 1.0, 90)], mel)
    argv = ["generate", "fast jig", "-o", str(out), "--model", str(tmp_path / "m")]
    assert main(argv + ["--melody", str(mel), "--duration", "0.05", "--seed", "0"]) == 0
    assert out.exists()


def test_import_musicgen_refuses_pickles(tmp_path, capsys):
    src = tmp_path / "hf"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    assert main(["import", "musicgen", str(src), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "pickled" in err
    assert not (tmp_path / "m").exists()


def test_assemble_from_checkpoints_then_generate(tmp_path, model_dir, capsys):
    out = tmp_path / "gen"
    argv = ["assemble", "--codec", str(model_dir / "codec"), "--lm", str(model_dir / "lm")]
    assert main(argv + ["--out", str(out)]) == 0
    wav = tmp_path / "a.wav"
    gen_argv = ["generate", "a jig", "-o", str(wav), "--model", str(out), "--duration", "0.05"]
    assert main(gen_argv) == 0
    assert wav.exists()


def test_assemble_refuses_a_codec_the_lm_was_not_trained_on(tmp_path, model_dir, capsys):
    from audiogen.codecs import Codec

    Codec.tiny().save(tmp_path / "other_codec")
    argv = ["assemble", "--codec", str(tmp_path / "other_codec"), "--lm", str(model_dir / "lm")]
    assert main(argv + ["--out", str(tmp_path / "gen")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "LM expects" in err
    assert not (tmp_path / "gen").exists()


def test_assembled_sampling_defaults_ship_with_the_model(tmp_path, model_dir, capsys):
    """``assemble --set`` writes generation.json; loading applies it, the CLI keeps it unless
    told otherwise, and a bad file or value is a one-line error naming it."""
    from audiogen.pipeline import MusicGenerator

    out = tmp_path / "gen"
    argv = ["assemble", "--codec", str(model_dir / "codec"), "--lm", str(model_dir / "lm")]
    sets = ["--set", "melody_cfg_coef=7.5", "--set", "top_k=20"]
    assert main(argv + ["--out", str(out)] + sets) == 0
    gen = MusicGenerator.load(out, device="cpu")
    assert gen.params.melody_cfg_coef == 7.5 and gen.params.top_k == 20
    assert gen.params.cfg_coef == 3.0  # the rest keep the library's defaults
    gen.save(tmp_path / "again")  # saving keeps them
    assert MusicGenerator.load(tmp_path / "again", device="cpu").params == gen.params

    assert main(argv + ["--out", str(tmp_path / "bad"), "--set", "top_k=many"]) == 2
    assert "top_k=many" in capsys.readouterr().err
    assert main(argv + ["--out", str(tmp_path / "bad"), "--set", "colour=3"]) == 2
    assert "unknown generation setting" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()

    (out / "generation.json").write_text('{"cfg_coef": "loud"}')
    wav = tmp_path / "a.wav"
    assert main(["generate", "a jig", "-o", str(wav), "--model", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "generation.json: cfg_coef must be a number" in err
    assert not wav.exists()
