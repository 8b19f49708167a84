"""Errors that name a user's mistake (a bad file, column, row or argument).

The CLI prints an :class:`InputError` as one line naming what is wrong and exits with code 2; any other
exception is a bug or an environment failure and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad user input: the message names the file, column, row or argument. A ``ValueError``, so callers
    that catch ``ValueError`` keep working."""
