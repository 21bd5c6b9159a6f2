"""Bundle trained melody models into ``audiogen/assets/melody`` and write a split as MIDI.

    python -m audiogen.melody.export model RUN_DIR OUT_DIR    # latest checkpoint -> OUT_DIR
    python -m audiogen.melody.export split RECIPE OUT_DIR [--split test]

Bundled weights are stored compactly: floating-point tensors in bfloat16, Markov counts in
int32 (its packed n-gram keys stay int64); :func:`audiogen.melody.model.load_model` reads
them back as float32 for inference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from audiogen.errors import UserError
from audiogen.fileio import atomic_write_bytes, atomic_write_text
from audiogen.melody.model import FORMAT


def export_model(run: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Copy a run's latest checkpoint (config + compact weights) into ``out``."""
    from audiogen.train.checkpoint import resolve_checkpoint

    src = resolve_checkpoint(run)
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    if config.get("format") != FORMAT:
        raise UserError(f"{src}: not a melody checkpoint")
    state = load_file(str(src / "model.safetensors"))
    compact = {}
    for k, v in state.items():
        if v.is_floating_point():
            v = v.to(torch.bfloat16)
        elif not k.startswith(("ngram_keys", "ctx_keys")):
            v = v.to(torch.int32)
        compact[k] = v.contiguous()
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(d / "model.safetensors", save(compact))
    config["source_checkpoint"] = str(src)
    atomic_write_text(d / "config.json", json.dumps(config, indent=2))
    return d


def export_split(recipe: str | os.PathLike, out: str | os.PathLike, split: str = "test") -> int:
    """Write the tunes of a recipe's data split as MIDI files; returns how many."""
    from audiogen.melody.data import write_midi
    from audiogen.melody.dataset import load_split
    from audiogen.train.melody_task import MelodyRecipe
    from audiogen.train.recipes import parse_recipe

    cfg = parse_recipe(recipe, MelodyRecipe).data
    tunes = load_split(cfg, split)
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(tunes):
        safe = "".join(c if c.isalnum() else "_" for c in m.name)[:60]
        write_midi(m, d / f"{i:04d}_{safe}.mid")
    return len(tunes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m audiogen.melody.export")
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("model")
    m.add_argument("run")
    m.add_argument("out")
    s = sub.add_parser("split")
    s.add_argument("recipe")
    s.add_argument("out")
    s.add_argument("--split", default="test", choices=("train", "valid", "test"))
    args = p.parse_args(argv)
    try:
        if args.what == "model":
            print(f"wrote {export_model(args.run, args.out)}")
        else:
            print(f"wrote {export_split(args.recipe, args.out, args.split)} tunes to {args.out}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
