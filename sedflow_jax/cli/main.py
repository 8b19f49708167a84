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
import os
import sys
from collections.abc import Sequence

from sedflow_jax.errors import InputError

__all__ = ["build_parser", "main", "USER_ERRORS"]

#: Exceptions that mean a user's mistake (bad argument value, missing, existing or unreadable file):
#: printed as one line ``sedflow-jax CMD: error: MESSAGE``, exit code 2 (a traceback with ``--debug``).
#: Anything else (a bug, an XLA failure) keeps its traceback, exit code 1.
USER_ERRORS = (InputError, FileNotFoundError, FileExistsError, IsADirectoryError, PermissionError)

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
    "merge",
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command."""
    from sedflow_jax import __version__

    parser = argparse.ArgumentParser(
        prog="sedflow-jax",
        description="JAX SEDflow: the PROVABGS SED model, ANPE and NUTS for galaxy photometry.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of user errors too (bad files or argument values)")
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
        Process exit code: 0 on success, 2 for a user error (:data:`USER_ERRORS`, reported as one line
        on stderr; re-raised with its traceback under ``--debug``). Other exceptions propagate (traceback,
        exit code 1).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # A command-line process is headless: figures are written to files. The library itself never picks
    # a backend (it draws on matplotlib.figure.Figure); this only covers pyplot use in a process that
    # did not choose a backend (MPLBACKEND set by the user wins).
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        if args.debug:
            raise
        print(f"sedflow-jax {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
