"""Access to the read-only reference data in ``../shared`` (beside the repository root).

``../shared`` holds data that may not be committed into the project (e.g. the original PROVABGS NMF tables,
MIT). Tests that need it call :func:`shared_dir` / :func:`provabgs_dir` (or use the ``shared`` marker and
these helpers): without the directory they are skipped locally, but they FAIL when the environment
variable ``CI`` is ``true``, so that CI can never pass by silently skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["SHARED_ROOT", "in_ci", "provabgs_dir", "require_shared", "shared_dir"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ROOT = REPO_ROOT.parent / "shared"


def in_ci() -> bool:
    """True when the environment variable CI is 'true' (any case) or '1'."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def require_shared(path: Path, what: str) -> Path:
    """Return ``path`` if it exists; otherwise skip the test (or fail it when CI=true)."""
    if path.exists():
        return path
    msg = f"{what} not found at {path} (the ../shared data beside the repository root)"
    if in_ci():
        pytest.fail(f"{msg}; CI=true, so this is an error, not a skip")
    pytest.skip(msg)


def shared_dir(*parts: str) -> Path:
    """``../shared/<parts>`` relative to the repository root, or skip (fail under CI=true) if absent."""
    return require_shared(SHARED_ROOT.joinpath(*parts), "/".join(("shared", *parts)))


def provabgs_dir() -> Path:
    """Directory of the original PROVABGS NMF basis tables (``../shared/data/provabgs``)."""
    return shared_dir("data", "provabgs")
