"""Our model vs DSPS on the same SSP table: composite SEDs and SDSS ugriz magnitudes.

What is shared, so the comparison is fair:

* **SSP table**: our default BC03 table (``bc03_default_path``), read by our loader and by DSPS's
  ``load_ssp_templates(fn=...)``.
* **SFH**: our piecewise-constant 42-bin SFH, mass per bin = ``_history(theta, z)['m'] * 10**logM``,
  handed to DSPS as a finely tabulated SFR(t_cosmic) (constant within each bin, jumps resolved by
  nodes 2e-7 of the shortest bin apart, so DSPS's trapezoid rule integrates it exactly; DSPS's table cannot start before t = 0.01 Gyr, so the oldest bin is
  shortened to start there with its mass kept).
* **Metallicity**: our Z per bin as log10(absolute Z) shifted by the model's ``log10_zmet_offset``,
  so both codes look up the same table metallicity. DSPS assigns each SSP age the nearest grid
  metallicity (triweight kernel, scatter 1e-3 dex) while we interpolate linearly in log Z, so the
  asserted cases use a constant-Z history exactly on a grid metallicity (a custom ZH basis with
  Z(t) = gamma1); a varying-Z case is measured and reported only.
* **No dust, no burst** (tau_BC = tau_ISM = 0, f_burst = 0) for composites. The per-SSP cases use
  the burst alone (f_burst = 1) at a native grid age and grid Z, against a DSPS top-hat SFH that
  lies inside that SSP's DSPS age bin, so DSPS gives weight 1 to the same SSP.
* **Photometry**: speclite sdss2010 ugriz. DSPS's kernels interpolate the SED onto the filter
  sampling (which aliases absorption lines), so the helper resamples the filters onto the SSP
  grid (rest frame) or onto the redshifted SSP grid (observed) before ``calc_rest_mag`` /
  ``calc_obs_mag``; both codes then apply the trapezoid rule on the SED nodes.
* **Lsun**: the table is in Lsun/Hz. DSPS converts with 3.828e33 erg/s (its AB0 = 3631 Jy at
  10 pc in Lsun/Hz). Our model converts with ``model.lsun_erg_per_s``: the table's own value
  (attribute ``lsun_erg_per_s``; BC03: 3.826e33, i.e. ours fainter by 0.00057 mag), else
  PROVABGS's 3.846e33 (ours brighter by 0.00509 mag). The constant
  -2.5 log10(lsun_ours / 3.828e33) is removed explicitly from every band.
* **Cosmology**: we use astropy's Planck13 (with radiation and massive neutrinos); DSPS's flat
  wCDM has neither. DSPS is given the same Om0, h, w0 = -1, wa = 0, and observed magnitudes are
  compared at fixed distance: each code's own distance modulus is subtracted (the DM difference is
  checked separately). Rest-frame magnitudes: our model at z = 0 (10 pc) vs ``calc_rest_mag``.

Findings (BC03 default table): per-SSP agreement is ~1e-4 mag (asserted <= 0.002). Composite
SFHs differ by more for SFHs dominated by the oldest bins: we represent each bin by ONE SSP at its
midpoint, DSPS integrates the SFH over its SSP age bins; the measured differences are asserted
against per-SFH bounds, and the 0.002 goal only where it holds (see ``COMPOSITE_TOL``).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests._shared import in_ci

HERE = Path(__file__).resolve().parent
HELPER = HERE / "dsps_reference.py"
BANDS = "ugriz"
LSUN_PROVABGS, LSUN_BC03, LSUN_DSPS = 3.846e33, 3.826e33, 3.828e33


def delta_lsun_mag(lsun_ours: float) -> float:
    """Our magnitudes minus DSPS's from the Lsun conventions alone."""
    return -2.5 * np.log10(lsun_ours / LSUN_DSPS)

GOAL_MAG = 0.002
DSPS_LGMET_SCATTER = 1e-3
REDSHIFTS = (0.0, 0.05, 0.1)
#: SSP ages (Gyr, snapped to the nearest native age) and table Z of the per-SSP cases
SSP_AGES_GYR = (0.005, 0.03, 0.3, 1.0, 3.0, 9.0)
#: one-hot and mixed NMF weights of the composite cases
SFH_CASES = {
    "beta1": (1.0, 0.0, 0.0, 0.0),
    "beta2": (0.0, 1.0, 0.0, 0.0),
    "beta3": (0.0, 0.0, 1.0, 0.0),
    "beta4": (0.0, 0.0, 0.0, 1.0),
    "flat_mix": (0.25, 0.25, 0.25, 0.25),
    "prior_mean": (0.5, 0.25, 0.125, 0.125),
}
#: Bound on max |ours - DSPS| over bands and z = 0, 0.05, 0.1 for composite SFHs. Measured on the
#: default BC03 table: 0.0064 (beta1), 0.0089 (beta2), 0.0078 (beta3), 0.0097 (beta4), 0.0062
#: (flat mix), 0.0064 (prior mean), all with Z on a grid point; 0.0139 with a varying Z history.
#: The 0.002 goal does not hold for composites: the difference is our one-SSP-per-bin midpoint
#: rule (PROVABGS's design), see ``test_composite_difference_is_the_midpoint_rule``.
COMPOSITE_TOL_CONST_Z = 0.012
COMPOSITE_TOL_VAR_Z = 0.02
#: |DSPS - exact integral| for the same SFH (DSPS's own age-bin discretisation), measured <= 0.0017
DSPS_VS_EXACT_TOL = 0.003
#: ours ('integrated' sampling) vs the exact integral: only the run-time bins' 8 sub-ages differ
INTEGRATED_VS_EXACT_TOL = 0.001


def _require_dsps():
    if importlib.util.find_spec("dsps") is None:
        reason = "dsps is not installed (pip install dsps==0.4.8)"
        if in_ci():
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


# ----------------------------------------------------------------------------- SFR tables
def _pc_table(cosmic_edges, sfr, n_per=24, rel_gap=1e-7):
    """Tabulate a piecewise-constant SFR on ascending cosmic-time intervals (Gyr, Msun/yr).

    Each jump sits exactly midway between two nodes ``2 gap`` apart (one global ``gap``), so the
    trapezoid rule DSPS applies integrates the piecewise-constant SFR exactly.
    """
    cosmic_edges = np.asarray(cosmic_edges, np.float64)
    width = np.diff(cosmic_edges)
    gap = rel_gap * np.min(width[width > 0])
    t, s = [], []
    for lo, hi, v in zip(cosmic_edges[:-1], cosmic_edges[1:], sfr):
        if hi <= lo:
            continue
        t.append(np.linspace(lo + gap, hi - gap, n_per))
        s.append(np.full(n_per, v))
    t, s = np.concatenate(t), np.concatenate(s)
    t[-1] = cosmic_edges[-1]  # the table must reach t_obs (DSPS reads the formed mass there)
    return t, s


def _composite_table(edges_lb, mass_msun, lgmet_bins, t_obs, t_min=0.01):
    """DSPS tables for our 42-bin SFH: edges in lookback Gyr, mass per bin in Msun."""
    edges_lb = np.asarray(edges_lb, np.float64)
    cosmic = t_obs - edges_lb[::-1]  # ascending
    mass = np.asarray(mass_msun, np.float64)[::-1]
    lgmet = np.asarray(lgmet_bins, np.float64)[::-1]
    cosmic = np.maximum(cosmic, t_min)  # the oldest bin starts at t_min; its mass is kept
    width = np.diff(cosmic)
    sfr = np.where(width > 0, mass / np.where(width > 0, width, 1.0) / 1e9, 0.0)
    t, s = _pc_table(cosmic, sfr)
    _, z = _pc_table(cosmic, lgmet)
    return t, s, z


def _tophat_table(t_obs, age_gyr, half_width, mass_msun, lgmet, t_min=0.01):
    tc = t_obs - age_gyr
    edges = np.array([t_min, tc - half_width, tc + half_width, t_obs])
    t, s = _pc_table(edges, [0.0, mass_msun / (2 * half_width) / 1e9, 0.0])
    return t, s, np.full_like(t, lgmet)


def _pad(rows, n):
    """Pad tables to a common length by repeating the first node 1e-9 Gyr earlier (zero SFR)."""
    out = []
    for t, s, z in rows:
        k = n - t.size
        t0 = t[0] - 1e-9 * np.arange(k, 0, -1)
        out.append((np.concatenate([t0, t]), np.concatenate([np.zeros(k), s]), np.concatenate([np.full(k, z[0]), z])))
    return out


# ----------------------------------------------------------------------------- fixture
def _mag(flux_nmgy):
    return 22.5 - 2.5 * np.log10(np.asarray(flux_nmgy, np.float64))


@pytest.fixture(scope="module")
def comparison(bc03_default_path, tmp_path_factory):
    """Build all cases, run DSPS once in a subprocess, return both sides' magnitudes."""
    _require_dsps()
    import jax.numpy as jnp
    import speclite.filters

    from sedflow_jax.model import ProvabgsModel
    from sedflow_jax.model.basis import NMFBasis, load_default_basis
    from sedflow_jax.sps.io import load_ssp_table

    table = load_ssp_table(bc03_default_path)
    base = load_default_basis()
    const_z = NMFBasis(
        base.t_lookback_gyr, base.sfh, np.stack([np.ones_like(base.t_lookback_gyr), np.zeros_like(base.t_lookback_gyr)]),
        attrs={"name": "constant_z"},
    )
    m_const = ProvabgsModel.build(table, const_z, crop_to_filters=False, z_max=0.2)
    m_default = ProvabgsModel.build(table, base, crop_to_filters=False, z_max=0.2)
    m_const_int = ProvabgsModel.build(table, const_z, crop_to_filters=False, z_max=0.2, ssp_sampling="integrated")
    offset = m_const.log10_zmet_offset
    lg_grid = np.asarray(table.log10_zmet, np.float64)
    i_zsun = int(np.argmin(np.abs(lg_grid - np.log10(0.02))))
    lg_age = np.asarray(table.log10_age_gyr, np.float64)

    def theta(beta, gamma1, gamma2=0.0, f_burst=0.0, t_burst=1.0, logm=10.0):
        return np.array([logm, *beta, f_burst, t_burst, gamma1, gamma2, 0.0, 0.0, 0.0])

    cases, rows = [], []
    g_sun = 10 ** (lg_grid[i_zsun] - offset)  # our Z that lands exactly on the grid Z = 0.02
    for z in REDSHIFTS:
        t_obs = float(m_const.cosmology.age(jnp.asarray(z)))
        for name, beta in SFH_CASES.items():
            for label, model, th in (
                ("constZ", m_const, theta(beta, g_sun)),
                ("varZ", m_default, theta(beta, 0.012, 0.004)),
            ):
                if label == "varZ" and name != "prior_mean":
                    continue
                h = model.history(jnp.asarray(th, model.dtype), jnp.asarray(z, model.dtype))
                mass = np.asarray(h["m"], np.float64) * 10 ** th[0]
                lgz = np.log10(np.asarray(h["z_bins"], np.float64)) + offset
                rows.append(_composite_table(np.asarray(h["edges"], np.float64), mass, lgz, t_obs))
                cases.append(dict(kind="composite", name=f"{name}/{label}", z=z, t_obs=t_obs, model=model, theta=th))
        for age in SSP_AGES_GYR:
            i = int(np.argmin(np.abs(lg_age - np.log10(age))))
            a = 10 ** lg_age[i]
            # half-width: a fifth of the distance to the nearest DSPS age-bin edge (midpoints in log)
            d = min(lg_age[i] - lg_age[i - 1], lg_age[i + 1] - lg_age[i]) / 2
            hw = 0.2 * a * (1 - 10 ** (-d))
            for iz in (2, 3, i_zsun):
                th = theta((1.0, 0, 0, 0), 10 ** (lg_grid[iz] - offset), f_burst=1.0, t_burst=a)
                rows.append(_tophat_table(t_obs, a, hw, 1e10, lg_grid[iz]))
                cases.append(dict(kind="ssp", name=f"ssp_{a:.3g}Gyr_Z{10**lg_grid[iz]:.3g}", z=z, t_obs=t_obs,
                                  model=m_const, theta=th))
    n_t = max(r[0].size for r in rows)
    rows = _pad(rows, n_t)

    names = speclite.filters.load_filters("sdss2010-*").names
    curves = [speclite.filters.load_filter(n) for n in names]
    n_pt = max(c.wavelength.size for c in curves)
    fw, ft = np.zeros((5, n_pt)), np.zeros((5, n_pt))
    for b, c in enumerate(curves):
        fw[b, : c.wavelength.size] = c.wavelength
        ft[b, : c.wavelength.size] = c.response
    from astropy.cosmology import Planck13

    tmp = tmp_path_factory.mktemp("dsps")
    np.savez(
        tmp / "in.npz", ssp_path=np.array(str(bc03_default_path)), filt_wave=fw, filt_trans=ft,
        filt_n=np.array([c.wavelength.size for c in curves]),
        t_table=np.stack([r[0] for r in rows]), sfr_table=np.stack([r[1] for r in rows]),
        lgmet_table=np.stack([r[2] for r in rows]), lgmet_scatter=np.array(DSPS_LGMET_SCATTER),
        t_obs=np.array([c["t_obs"] for c in cases]), redshift=np.array([c["z"] for c in cases]),
        cosmo=np.array([Planck13.Om0, -1.0, 0.0, Planck13.H0.value / 100]),
    )
    proc = subprocess.run([sys.executable, str(HELPER), str(tmp / "in.npz"), str(tmp / "out.npz")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(tmp / "out.npz") as f:
        dsps = {k: f[k] for k in f.files}

    ours_mag, ours_sed, our_dmod, ours_int_mag = [], [], [], []
    for c in cases:
        model, th = c["model"], jnp.asarray(c["theta"], c["model"].dtype)
        zz = jnp.asarray(c["z"], model.dtype)
        ours_mag.append(_mag(model(th, zz)))
        # the same SFH with each bin's SSP averaged over the bin ('integrated' sampling)
        ours_int_mag.append(_mag(m_const_int(th, zz)) if model is m_const else np.full(5, np.nan))
        ours_sed.append(np.asarray(model.rest_lnu(th, zz), np.float64))
        d_l = float(model.cosmology.luminosity_distance(zz))
        our_dmod.append(5 * np.log10(np.hypot(d_l, 1e-5) / 1e-5))
    # Exact integral of the same piecewise-constant SFH over SSPs interpolated linearly in log age
    # (400 sub-ages per bin), at z = 0 and Z on the grid: the converged answer both codes approximate.
    lnu_z = np.asarray(table.lnu_lsun_per_hz_per_msun[i_zsun], np.float64)

    def ssp_at(age):
        x = np.log10(age)
        i = np.clip(np.searchsorted(lg_age, x) - 1, 0, lg_age.size - 2)
        f = np.clip((x - lg_age[i]) / (lg_age[i + 1] - lg_age[i]), 0, 1)
        return lnu_z[i] * (1 - f)[:, None] + lnu_z[i + 1] * f[:, None]

    exact_sed = {}
    for c in cases:
        if c["kind"] == "composite" and c["z"] == 0 and c["name"].endswith("constZ"):
            th = jnp.asarray(c["theta"], m_const.dtype)
            h = m_const.history(th, jnp.asarray(0.0, m_const.dtype))
            e, mm = np.asarray(h["edges"], np.float64), np.asarray(h["m"], np.float64)
            sed = np.zeros(lnu_z.shape[1])
            for k in range(e.size - 1):
                if e[k + 1] > e[k] and mm[k] > 0:
                    ages = e[k] + (np.arange(400) + 0.5) * (e[k + 1] - e[k]) / 400
                    sed += mm[k] * ssp_at(ages).mean(0)
            exact_sed[c["name"]] = sed * 10 ** c["theta"][0]
    lsun = float(getattr(m_const, "lsun_erg_per_s", LSUN_PROVABGS))
    exact_sed_int = {}
    for c in cases:
        if c["name"] in exact_sed and c["z"] == 0:
            th = jnp.asarray(c["theta"], m_const_int.dtype)
            exact_sed_int[c["name"]] = np.asarray(m_const_int.rest_lnu(th, jnp.asarray(0.0, m_const_int.dtype)), np.float64)
    return dict(exact_sed=exact_sed, ours_int_mag=np.array(ours_int_mag), ours_int_sed=exact_sed_int, curves=curves, lsun=lsun, table_lsun=dict(table.attrs).get("lsun_erg_per_s"), cases=cases, ours_mag=np.array(ours_mag), ours_sed=np.array(ours_sed), our_dmod=np.array(our_dmod),
                dsps=dsps, wave=np.asarray(m_const.wave_aa, np.float64))


def _delta_mag(comp):
    """ours - DSPS per case and band, Lsun convention removed, at fixed distance for z > 0."""
    d = comp["dsps"]
    z = np.array([c["z"] for c in comp["cases"]])
    ref = np.where((z > 0)[:, None], d["obs_mag"] - d["dmod"][:, None] + comp["our_dmod"][:, None], d["rest_mag"])
    return comp["ours_mag"] - ref - delta_lsun_mag(comp["lsun"])


def _table(comp, kind):
    dm = _delta_mag(comp)
    lines = [f"{'case':34s} {'z':>5s} " + " ".join(f"{b:>8s}" for b in BANDS)]
    for c, row in zip(comp["cases"], dm):
        if c["kind"] == kind:
            lines.append(f"{c['name']:34s} {c['z']:5.2f} " + " ".join(f"{x:+8.4f}" for x in row))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- tests
def test_lsun_convention_offset(comparison):
    """The Lsun conventions shift every magnitude by a constant; the model uses the table's Lsun."""
    assert delta_lsun_mag(LSUN_PROVABGS) == pytest.approx(-0.005093, abs=2e-6)
    assert delta_lsun_mag(LSUN_BC03) == pytest.approx(+0.000567, abs=2e-6)
    print(f"model Lsun = {comparison['lsun']:.4e} erg/s, offset vs DSPS = {delta_lsun_mag(comparison['lsun']):+.5f} mag")
    if comparison["table_lsun"] is not None:
        assert comparison["lsun"] == pytest.approx(float(comparison["table_lsun"]), rel=1e-12)
    # DSPS's AB0 is 3631 Jy at 10 pc in units of its Lsun
    ab0 = 3631e-23 * 4 * np.pi * (10 * 3.0856775814913673e18) ** 2 / LSUN_DSPS
    assert ab0 == pytest.approx(1.13492e-13, rel=1e-5)


def test_dsps_runs_in_float64(comparison):
    assert bool(comparison["dsps"]["x64"])


def test_distance_modulus_difference(comparison):
    """Planck13 (astropy, radiation + neutrinos) vs DSPS flat wCDM: DM agree to < 0.002 mag at z <= 0.1."""
    z = np.array([c["z"] for c in comparison["cases"]])
    sel = z > 0
    ddm = comparison["our_dmod"][sel] - comparison["dsps"]["dmod"][sel]
    print("DM(ours) - DM(DSPS):", {float(zz): float(x) for zz, x in zip(z[sel], ddm)})
    assert np.all(np.abs(ddm) < GOAL_MAG)


def test_single_ssp_magnitudes_agree(comparison):
    """One SSP (native age and Z) through both codes: |dm| <= 0.002 in ugriz, rest and observed."""
    dm = _delta_mag(comparison)
    sel = np.array([c["kind"] == "ssp" for c in comparison["cases"]])
    print("\nper-SSP ours - DSPS (mag, Lsun removed):\n" + _table(comparison, "ssp"))
    assert np.all(np.isfinite(dm[sel]))
    assert np.max(np.abs(dm[sel])) <= GOAL_MAG


def test_single_ssp_sed_agrees(comparison):
    """Rest-frame SEDs of the per-SSP cases agree to float32 precision (same table rows)."""
    sel = [i for i, c in enumerate(comparison["cases"]) if c["kind"] == "ssp"]
    ours = comparison["ours_sed"][sel]
    ref = comparison["dsps"]["rest_sed"][sel]
    rel = np.abs(ours / ref - 1)
    assert np.max(rel) < 1e-3, np.max(rel)


def test_composite_magnitudes(comparison):
    """Composite SFHs: report ours - DSPS per band; assert the measured per-SFH bounds."""
    dm = _delta_mag(comparison)
    print("\ncomposite ours - DSPS (mag, Lsun removed):\n" + _table(comparison, "composite"))
    worst = {}
    for c, row in zip(comparison["cases"], dm):
        if c["kind"] == "composite":
            worst[c["name"]] = max(worst.get(c["name"], 0.0), float(np.max(np.abs(row))))
    print("worst |dm| per SFH:", {k: round(v, 4) for k, v in worst.items()})
    assert all(np.isfinite(list(worst.values())))
    for name, w in worst.items():
        tol = COMPOSITE_TOL_CONST_Z if name.endswith("constZ") else COMPOSITE_TOL_VAR_Z
        assert w <= tol, (name, w)


def _rest_mags_on_grid(wave, sed, curves):
    """AB magnitudes at 10 pc in DSPS's units, filters resampled onto the SED grid (as the helper)."""
    out = []
    for c in curves:
        r = np.interp(wave, c.wavelength, c.response, left=0.0, right=0.0)
        out.append(-2.5 * np.log10(np.trapezoid(r * sed / wave, wave) / (1.13492e-13 * np.trapezoid(r / wave, wave))))
    return np.array(out)


def test_composite_difference_is_the_midpoint_rule(comparison):
    """Against the exact integral of the same SFH (z = 0, Z on grid): DSPS is within 0.003 mag (its
    own SSP age-bin discretisation), while ours differs by the one-SSP-at-the-bin-midpoint rule;
    the ours - DSPS differences of ``test_composite_magnitudes`` are mostly that rule."""
    wave = comparison["wave"]
    dm_ours_dsps = _delta_mag(comparison)
    lines = [f"{'SFH (z=0)':20s} {'ours-exact':>42s} {'DSPS-exact':>42s}"]
    for i, c in enumerate(comparison["cases"]):
        if c["name"] not in comparison["exact_sed"] or c["z"] != 0:
            continue
        exact = _rest_mags_on_grid(wave, comparison["exact_sed"][c["name"]], comparison["curves"])
        dsps = comparison["dsps"]["rest_mag"][i]
        ours = _rest_mags_on_grid(wave, comparison["ours_sed"][i], comparison["curves"])
        lines.append(f"{c['name']:20s} " + " ".join(f"{x:+8.4f}" for x in ours - exact) + "  "
                     + " ".join(f"{x:+8.4f}" for x in dsps - exact))
        assert np.max(np.abs(dsps - exact)) <= DSPS_VS_EXACT_TOL, (c["name"], dsps - exact)
        # ours - DSPS is the midpoint error up to DSPS's own discretisation error
        np.testing.assert_allclose(dm_ours_dsps[i], (ours - exact) - (dsps - exact), atol=DSPS_VS_EXACT_TOL)
    print("\n" + "\n".join(lines))


def test_integrated_sampling_composites_agree_with_dsps(comparison):
    """With ``ssp_sampling='integrated'`` (each bin's SSP averaged over the bin in time) our composite
    SED equals the exact integral of the SFH over the SSPs to 1e-3 mag (measured <= 3e-5), and ours -
    DSPS is then DSPS's own age-discretisation error: |ours - DSPS| <= 0.003 mag over all bands,
    SFHs and redshifts (measured 0.0029, beta4 at z = 0.1), and at z = 0 it equals -(DSPS - exact)
    up to the filter-normalisation difference of the per-SSP test (<= 5e-4 mag). Z sits on a grid point, so both codes use the same SSP metallicity."""
    comp = dict(comparison, ours_mag=comparison["ours_int_mag"])
    dm = _delta_mag(comp)
    sel = np.array([c["kind"] == "composite" and c["name"].endswith("constZ") for c in comparison["cases"]])
    print("\ncomposite, integrated sampling, ours - DSPS (mag):\n" + _table(comp, "composite"))
    assert np.all(np.isfinite(dm[sel]))
    wave = comparison["wave"]
    for name, sed in comparison["ours_int_sed"].items():
        exact = _rest_mags_on_grid(wave, comparison["exact_sed"][name], comparison["curves"])
        ours = _rest_mags_on_grid(wave, sed, comparison["curves"])
        i = next(k for k, c in enumerate(comparison["cases"]) if c["name"] == name and c["z"] == 0)
        dsps = comparison["dsps"]["rest_mag"][i]
        print(f"{name:20s} ours-exact {np.round(ours - exact, 5)}  DSPS-exact {np.round(dsps - exact, 5)}")
        assert np.max(np.abs(ours - exact)) <= INTEGRATED_VS_EXACT_TOL, (name, ours - exact)
        # up to the u/i filter-normalisation difference seen per SSP (<= 5e-4 mag)
        np.testing.assert_allclose(dm[i], -(dsps - exact), atol=6e-4)
    assert np.max(np.abs(dm[sel])) <= DSPS_VS_EXACT_TOL, np.max(np.abs(dm[sel]))
