"""`audiogen eval melody`: JSON + Markdown + piano rolls for each model."""

from __future__ import annotations

import json
import math

import torch

from audiogen.cli import main
from audiogen.melody.markov import MarkovModel
from audiogen.melody.model import MelodyModelConfig, build_model, save_model
from audiogen.melody.tokens import CONDITION_LEN, get_tokenizer

SMALL = {"dim": 32, "num_layers": 1, "num_heads": 2, "ffn_dim": 64}


def test_eval_melody_report(tunes, midi_dir, tmp_path, capsys):
    tok = get_tokenizer()
    mk = MarkovModel.fit(
        [tok.encode(m) for m in tunes],
        vocab_size=tok.vocab_size,
        order=4,
        pad_id=tok.pad_id,
        scored_from=CONDITION_LEN,
    )
    dirs = {"markov": save_model(mk, MelodyModelConfig(kind="markov", order=4), tmp_path / "mk")}
    torch.manual_seed(0)
    for kind in ("lstm", "transformer"):
        cfg = MelodyModelConfig(kind=kind, **SMALL)
        dirs[kind] = save_model(build_model(cfg), cfg, tmp_path / kind)
    out = tmp_path / "rep" / "report.json"
    out.parent.mkdir()
    args = ["eval", "melody", "--data", str(midi_dir), "--out", str(out), "--samples", "4"]
    for name, d in dirs.items():
        args += ["--model", f"{name}={d}"]
    args += ["--model", str(dirs["markov"])]  # an extra model, named after its directory
    assert main(args) == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert set(report["models"]) == {"markov", "lstm", "transformer", "mk"}
    assert report["data"]["tunes"] == len(tunes)
    assert report["reference"]["in_key_ratio"] == 1.0
    for entry in report["models"].values():
        for key in ("bits_per_note", "in_key_ratio", "pc_kl", "interval_kl", "duration_kl"):
            assert math.isfinite(entry[key]) and entry[key] >= 0, key
        assert (out.parent / entry["piano_roll"]).stat().st_size > 1000
    m = report["models"]
    # counted on these very tunes vs. untrained networks (log2 of ~426 tokens each)
    assert m["markov"]["bits_per_note"] < 0.5 * m["transformer"]["bits_per_note"]
    assert m["markov"]["bits_per_note"] == m["mk"]["bits_per_note"]
    md = out.with_suffix(".md").read_text()
    assert "| markov |" in md and "report_transformer.png" in md


def test_eval_melody_bad_data_is_a_clean_error(tmp_path, capsys):
    (tmp_path / "x.mid").write_bytes(b"garbage")
    rc = main(["eval", "melody", "--data", str(tmp_path), "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.json").exists()
