"""Kroupa IMF normalisation, Raiteri+96 turn-off masses and remnant fractions."""

import numpy as np

from sedflow_jax.sps.remnants import kroupa_mass_integral, raiteri96_turnoff_mass, remnant_mass_fraction


def test_kroupa_normalised_to_one_msun():
    np.testing.assert_allclose(kroupa_mass_integral(0.1, 100.0, 1), 1.0, rtol=1e-12)
    # by hand: c1 [(0.5^0.7 - 0.1^0.7)/0.7] + (c1/2) [(0.5^-0.3 - 100^-0.3)/0.3] = 1 -> c1 = 0.44891;
    # mass above 1 Msun = (c1/2) (1 - 100^-0.3)/0.3 = 0.5603
    np.testing.assert_allclose(kroupa_mass_integral(1.0, 100.0, 1), 0.5603, atol=2e-4)
    # main-sequence (living) mass below the 10 Gyr turn-off: 0.436 in the research note
    np.testing.assert_allclose(kroupa_mass_integral(0.1, raiteri96_turnoff_mass(1e10, 0.02), 1), 0.436, atol=0.002)


def test_turnoff_mass():
    np.testing.assert_allclose(raiteri96_turnoff_mass(1e10, 0.02), 0.99, atol=0.01)  # research note
    m = raiteri96_turnoff_mass(np.geomspace(1e6, 2e10, 50), 0.02)
    assert np.all(np.diff(m) <= 0)
    assert raiteri96_turnoff_mass(1e5, 0.02) == 100.0  # nothing has died


def test_remnant_fraction():
    np.testing.assert_allclose(remnant_mass_fraction(1e10, 0.02), 0.150, atol=0.002)  # research note
    assert remnant_mass_fraction(1e5, 0.02) == 0.0
    r = remnant_mass_fraction(np.geomspace(3e6, 2e10, 60), 0.02)
    assert np.all(np.diff(r) >= 0)
