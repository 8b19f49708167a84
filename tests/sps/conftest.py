"""Fixtures for the SSP-table tests (helpers live in ``_ssp_test_helpers.py``)."""

from __future__ import annotations

import pytest

from _ssp_test_helpers import BANDS


@pytest.fixture(scope="session")
def bc03_native(bc03_fits):
    """The BC03 grid at native resolution (t = 0 dropped)."""
    from sedflow_jax.sps.bc03 import read_bc03_native

    return read_bc03_native(bc03_fits)


@pytest.fixture(scope="session")
def sdss_filters():
    """speclite sdss2010-{u,g,r,i,z} as a FilterSequence."""
    from speclite import filters

    return filters.load_filters(*[f"sdss2010-{b}" for b in BANDS])
