"""``audiogen train TASK --recipe FILE --out DIR [--resume] [--set section.key=value ...]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from audiogen.train.tasks import get_tasks

    parser = subparsers.add_parser("train", help="train a model from a TOML recipe")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for name, task in get_tasks().items():
        p = tasks.add_parser(name, help=task.help, description=task.help)
        p.add_argument("--recipe", type=Path, required=True, help="TOML recipe (see recipes/)")
        p.add_argument("--out", type=Path, required=True, help="run directory (logs, checkpoints)")
        p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="SECTION.KEY=VALUE",
            help="override a recipe value (repeatable)",
        )
        p.set_defaults(func=_run, task_name=name)


def _run(args: argparse.Namespace) -> int:
    from audiogen.train.loop import train
    from audiogen.train.recipes import parse_recipe
    from audiogen.train.tasks import get_tasks

    task = get_tasks()[args.task_name]
    recipe = parse_recipe(args.recipe, task.recipe_cls, args.overrides)
    result = train(task, recipe, out_dir=args.out, resume=args.resume)
    if result.checkpoint is not None:
        print(f"step {result.step}: loss {result.loss:.6g}; checkpoint {result.checkpoint}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``train`` alone (``python -m audiogen.cli.train``), e.g. under torchrun."""
    from audiogen.errors import UserError

    parser = argparse.ArgumentParser(prog="audiogen")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
