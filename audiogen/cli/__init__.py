"""The ``audiogen`` command: one argparse front, one thin module per command group.

Each module in this package exposes ``register(subparsers)`` that adds its subcommand(s)
and sets ``func`` on the parsed namespace. Command functions parse, call one library
function, and report. A :class:`audiogen.errors.UserError` becomes one line on stderr,
``error: ...``, and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from audiogen import __version__
from audiogen.errors import UserError

# Command-group modules, in the order they appear in ``audiogen --help``.
_MODULES = (
    "render",
    "synth",
    "data",
    "codec",
    "imports",
    "tokenize",
    "train",
    "generate",
    "eval",
    "serve",
    "compose",
)


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error contract: one ``error:`` line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="audiogen",
        description="Text- and melody-conditioned music generation, offline and trainable.",
    )
    parser.add_argument("--version", action="version", version=f"audiogen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _MODULES:
        importlib.import_module(f"audiogen.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from audiogen.runtime import keep_freed_memory, quiet_library_warnings

    keep_freed_memory()
    quiet_library_warnings()
    try:
        result = args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
