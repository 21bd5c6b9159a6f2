"""Weight import errors and audiogen's own checkpoint round trip."""

import json

import pytest
import torch

from audiogen.errors import UserError
from audiogen.lm import MusicLM, tiny_config
from audiogen.lm.convert import from_hf_musicgen
from audiogen.lm.io import load_lm, save_lm


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    lm = MusicLM(config=tiny_config(delays=[0, 0, 1, 1])).eval()
    save_lm(lm, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    back = load_lm(tmp_path)
    assert back.config == lm.config
    seq = torch.randint(0, 33, (1, 4, 5))
    with torch.no_grad():
        assert torch.equal(lm(seq).logits, back(seq).logits)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="config.json"):
        load_lm(tmp_path)
    save_lm(MusicLM(config=tiny_config()), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="model.safetensors"):
        load_lm(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(UserError, match="model.safetensors"):
        load_lm(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["lm"]["bogus"] = 1
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="bogus"):
        load_lm(tmp_path)


def test_hf_import_from_decoder_only_dir_and_errors(tmp_path):
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    from .hf_peers import decoder_kwargs

    hf = MusicgenForCausalLM(MusicgenDecoderConfig(**decoder_kwargs(audio_channels=2)))
    hf.save_pretrained(tmp_path / "dec")
    imported = from_hf_musicgen(tmp_path / "dec")
    assert imported.config.delays == [0, 0, 1, 1]  # stereo interleaving
    assert imported.text_proj is None
    # Missing weights / pickled weights only / corrupt weights / missing config.
    (tmp_path / "dec" / "model.safetensors").rename(tmp_path / "dec" / "pytorch_model.bin")
    with pytest.raises(UserError, match="pickled"):
        from_hf_musicgen(tmp_path / "dec")
    (tmp_path / "dec" / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(UserError, match="model.safetensors"):
        from_hf_musicgen(tmp_path / "dec")
    (tmp_path / "dec" / "config.json").unlink()
    with pytest.raises(UserError, match="config.json"):
        from_hf_musicgen(tmp_path / "dec")
