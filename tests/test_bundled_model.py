"""The bundled tiny model (audiogen/assets/tiny) loads by name and its conditions matter."""

import pytest
import torch

from audiogen.errors import UserError
from audiogen.pipeline import ASSETS, MusicGenerator

MELODY = ASSETS / "melodies" / "fare_you_well.mid"


@pytest.fixture(scope="module")
def gen():
    g = MusicGenerator.load("tiny", device="cpu")
    g.set_generation_params(duration=1.0)
    return g


def test_bundle_is_small_and_safetensors_only():
    files = [p for p in (ASSETS / "tiny").rglob("*") if p.is_file()]
    suffixes = sorted(p.suffix for p in files)
    assert suffixes == [".json"] * 3 + [".safetensors"] * 2  # configs, generation.json, weights
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20


def test_generates_audio_at_the_codec_rate(gen):
    wav = gen.generate(["a lively Irish reel for solo fiddle"], seed=0)
    assert wav.shape == (1, 1, gen.sample_rate) and torch.isfinite(wav).all()
    assert wav.abs().max() > 1e-3  # not silence


def test_captions_and_melody_change_the_output(gen):
    prompt = ["a gentle Bach chorale for a string quartet"]
    cond = gen.generate_codes(prompt, seed=0)
    assert not torch.equal(cond, gen.generate_codes([None], seed=0))
    assert not torch.equal(cond, gen.generate_codes(["a brisk jig on tin whistle"], seed=0))
    chroma = gen.melody_chroma(MELODY)
    assert not torch.equal(cond, gen.generate_codes(prompt, chromas=[chroma], seed=0))
    assert torch.equal(cond, gen.generate_codes(prompt, seed=0))  # seeded: reproducible


def test_the_prompts_tempo_drives_the_beat_clock(gen):
    """The bundled LM has a beat clock: the tempo a prompt states changes what is generated,
    and the same prompt without a tempo is generated without the clock."""
    assert gen.model.tempo is not None
    base = "a lively Irish reel for solo fiddle"
    fast = gen.generate_codes([f"{base}, 120 bpm"], seed=0)
    assert not torch.equal(fast, gen.generate_codes([f"{base}, 80 bpm"], seed=0))
    tok = gen.model.tokenize_tempo([f"{base}, 120 bpm", base], 10)
    assert tok.present.tolist() == [True, False] and tok.bpm[0] == 120


def test_the_bundle_guides_its_beat_clock_at_a_scale_of_its_own():
    """The bundle ships tempo_cfg_coef (generation.json): a prompt stating a tempo gets the
    clock's own guidance branch, a prompt without one is generated as before."""
    g = MusicGenerator.load("tiny", device="cpu", dtype="fp32")
    assert g.params.tempo_cfg_coef == 6
    g.set_generation_params(duration=0.5, use_sampling=False)
    timed, untimed = ["a lively Irish reel for solo fiddle, 120 bpm"], ["a lively Irish reel"]
    guided, plain_untimed = g.generate_codes(timed), g.generate_codes(untimed)
    g.set_generation_params(tempo_cfg_coef=None)
    assert not torch.equal(g.generate_codes(timed), guided)
    assert torch.equal(g.generate_codes(untimed), plain_untimed)


def test_melody_guidance_scale():
    """melody_cfg_coef adds a third CFG branch (the caption without the melody): equal to
    cfg_coef it is plain CFG, larger it changes the output, and without a melody it is unused.
    The bundle ships its own default (generation.json)."""
    g = MusicGenerator.load("tiny", device="cpu", dtype="fp32")
    assert g.params.melody_cfg_coef == 6 and g.params.temperature == 0.8
    g.set_generation_params(duration=0.5, use_sampling=False, melody_cfg_coef=None)
    prompt = ["a gentle air for solo flute"]
    chroma = [g.melody_chroma(MELODY)]
    plain = g.generate_codes(prompt, chromas=chroma)
    text_only = g.generate_codes(prompt)
    g.set_generation_params(melody_cfg_coef=g.params.cfg_coef)
    assert torch.equal(g.generate_codes(prompt, chromas=chroma), plain)
    g.set_generation_params(melody_cfg_coef=12.0)
    assert not torch.equal(g.generate_codes(prompt, chromas=chroma), plain)
    assert torch.equal(g.generate_codes(prompt), text_only)
    with pytest.raises(UserError, match="melody_cfg_coef"):
        g.set_generation_params(melody_cfg_coef=float("nan"))
    assert g.params.melody_cfg_coef == 12.0  # a rejected value leaves the settings as they were


def test_loading_and_generating_from_text_import_no_heavy_libraries():
    """Start-up stays short: the default MiniLM runs without transformers, and the chroma
    filter bank (librosa -> scipy.signal, numba) waits for an audio melody."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from audiogen.pipeline import MusicGenerator\n"
        "g = MusicGenerator.load('tiny', device='cpu')\n"
        "g.set_generation_params(duration=0.2)\n"
        "g.generate(['a waltz on piano'], seed=0)\n"
        "print(sorted(m for m in ('transformers', 'scipy.signal', 'librosa', 'numba')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
