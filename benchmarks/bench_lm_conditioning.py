"""Do the captions and melodies matter to a trained LM? Held-out loss with and without them.

Cross-entropy of the test split's token windows (one per piece, fixed by the recipe's
seed) under four conditions: caption + melody, caption only, melody only, neither (the
null condition the CFG branch uses). A model that ignores its conditions scores the same
in all four. A model with a beat clock (``model.tempo``) is also scored with the caption
and melody but without the clock, to measure what the clock alone is worth.

    python benchmarks/bench_lm_conditioning.py --checkpoint runs/tiny/lm/checkpoints/step_N \\
        --tokens runs/tiny/tokens [--recipe recipes/lm_tiny.toml]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, type=Path, help="LM checkpoint directory")
    ap.add_argument("--tokens", required=True, type=Path, help="token directory")
    ap.add_argument("--recipe", type=Path, default=Path("recipes/lm_tiny.toml"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/lm_conditioning.json"))
    args = ap.parse_args()
    torch.manual_seed(0)

    from audiogen.train import lm_task
    from audiogen.train.recipes import parse_recipe

    recipe = parse_recipe(args.recipe, lm_task.LMRecipe, [f"data.tokens={args.tokens}"])
    model = lm_task.MusicGenForTraining.load(args.checkpoint)
    recipe.model = model.spec  # the checkpoint's conditioners, whatever the recipe says
    modes = {
        "caption+melody": (0.0, 0.0, 0.0),
        "caption": (0.0, 1.0, 0.0),
        "melody": (1.0, 0.0, 0.0),
        "neither": (1.0, 1.0, 0.0),
    }
    if model.tempo is not None:
        modes["caption+melody, no clock"] = (0.0, 0.0, 1.0)
    result = {"checkpoint": str(args.checkpoint), "split": args.split}
    for name, (td, md, tc) in modes.items():
        ev = lm_task.evaluate(
            model,
            recipe,
            split=args.split,
            max_batches=64,
            text_dropout=td,
            melody_dropout=md,
            tempo_dropout=tc,
        )
        result[name] = ev
        print(f"{name:>25}: cross-entropy {ev['ce']:.4f} nats/token (ppl {ev['ppl']:.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
