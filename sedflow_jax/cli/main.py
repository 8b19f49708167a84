"""Command-line entry point ``sedflow-jax``.

Each sub-command lives in its own module of :mod:`sedflow_jax.cli` exposing
``add_parser(subparsers)``, which registers the command and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code) with ``parser.set_defaults(func=...)``.
To add a command, write such a module and append its name to :data:`_SUBCOMMAND_MODULES`.
Modules are imported lazily, in order, when the parser is built; keep heavy imports (JAX) inside
the command functions so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

#: Sub-command modules under ``sedflow_jax.cli``, each with ``add_parser(subparsers)``. Append here.
_SUBCOMMAND_MODULES: list[str] = [
    "ssp",
    "model",
    "simulate",
    "noise",
    "validate",
    "train",
    "infer",
    "nuts",
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command."""
    from sedflow_jax import __version__

    parser = argparse.ArgumentParser(
        prog="sedflow-jax",
        description="JAX SEDflow: the PROVABGS SED model, ANPE and NUTS for galaxy photometry.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(f"sedflow_jax.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: arguments without the program name; default ``sys.argv[1:]``.

    Returns:
        Process exit code (0 on success). Expected failures (bad files, missing optional
        dependencies) are reported on stderr with exit code 1 instead of a traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"sedflow-jax {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
