"""DSPS reference computations, run in a SEPARATE process (``python dsps_reference.py in.npz out.npz``).

Importing ``dsps`` switches JAX to float64 for the whole process (``jax_enable_x64`` at import),
so the tests never import it themselves: they write the inputs to an ``.npz`` file, run this
script with ``subprocess`` and read the outputs back.

Inputs (``in.npz``):
    ssp_path: () str, DSPS-format HDF5 table, loaded with ``load_ssp_templates(fn=...)``.
    filt_wave, filt_trans: (n_band, n_pt) speclite curves, zero-padded; filt_n: (n_band,) nodes.
    t_table, sfr_table, lgmet_table: (n_case, n_t) cosmic time (Gyr), SFR (Msun/yr), log10 Z.
    lgmet_scatter: () float, DSPS's lognormal metallicity scatter (dex).
    t_obs: (n_case,) age of the universe at observation, Gyr.
    redshift: (n_case,) redshift of each case (the galaxy is observed at t_obs = age(z)); observed
        magnitudes are computed where z > 0.
    cosmo: (4,) DSPS flat wCDM (Om0, w0, wa, h).

Outputs (``out.npz``):
    ssp_wave: (n_wave,) Å;  rest_sed: (n_case, n_wave) L_nu in Lsun/Hz;
    weights: (n_case, n_met, n_age) DSPS SSP weights;
    rest_mag: (n_case, n_band) ``calc_rest_mag`` with each filter resampled onto the SSP grid;
    obs_mag: (n_case, n_band) ``calc_obs_mag`` at the case's redshift with each filter resampled
        onto the redshifted SSP grid (NaN where z = 0);  dmod: (n_case,) DSPS's distance modulus
        (NaN where z = 0);  x64: () bool.

Filters are resampled onto the SED grid (linear interpolation of the transmission, zero outside
the curve) before calling the DSPS kernels, because the kernels interpolate the SED onto the
filter's own sampling, which aliases the SSP absorption lines (``docs/ssp_tables.md`` §4).
"""

from __future__ import annotations

import sys


def _resampled_filters(wave_grid, filt_wave, filt_trans, filt_n):
    import numpy as np

    out = []
    for b in range(len(filt_n)):
        n = int(filt_n[b])
        out.append(np.interp(wave_grid, filt_wave[b, :n], filt_trans[b, :n], left=0.0, right=0.0))
    return np.stack(out)


def main(in_path: str, out_path: str) -> None:
    import jax
    import numpy as np
    from dsps import calc_obs_mag, calc_rest_mag, calc_rest_sed_sfh_table_met_table, load_ssp_templates
    from dsps.cosmology import flat_wcdm

    with np.load(in_path) as f:
        inp = {k: f[k] for k in f.files}
    ssp = load_ssp_templates(fn=str(inp["ssp_path"]))
    wave = np.asarray(ssp.ssp_wave, np.float64)
    Om0, w0, wa, h = (float(x) for x in inp["cosmo"])

    @jax.jit
    def sed_one(t_table, sfr_table, lgmet_table, t_obs):
        res = calc_rest_sed_sfh_table_met_table(
            t_table, sfr_table, lgmet_table, inp["lgmet_scatter"], ssp.ssp_lgmet, ssp.ssp_lg_age_gyr,
            ssp.ssp_flux, t_obs,
        )
        return res.rest_sed, res.weights

    seds, weights = [], []
    for c in range(inp["t_obs"].shape[0]):
        s, w = sed_one(inp["t_table"][c], inp["sfr_table"][c], inp["lgmet_table"][c], inp["t_obs"][c])
        seds.append(np.asarray(s))
        weights.append(np.asarray(w))
    seds = np.stack(seds)

    trans_rest = _resampled_filters(wave, inp["filt_wave"], inp["filt_trans"], inp["filt_n"])
    rest_mag_fn = jax.jit(jax.vmap(jax.vmap(calc_rest_mag, (None, None, None, 0)), (None, 0, None, None)))
    rest_mag = np.asarray(rest_mag_fn(wave, seds, wave, trans_rest))

    zs = np.asarray(inp["redshift"], np.float64)
    obs_mag = np.full(rest_mag.shape, np.nan)
    dmod = np.full(zs.shape, np.nan)
    obs_fn = jax.jit(jax.vmap(calc_obs_mag, (None, None, None, 0, None, None, None, None, None)))
    for c, z in enumerate(zs):
        if z <= 0:
            continue
        wave_obs = wave * (1.0 + z)
        trans_obs = _resampled_filters(wave_obs, inp["filt_wave"], inp["filt_trans"], inp["filt_n"])
        obs_mag[c] = np.asarray(obs_fn(wave, seds[c], wave_obs, trans_obs, z, Om0, w0, wa, h))
        dmod[c] = float(flat_wcdm.distance_modulus_to_z(z, Om0, w0, wa, h))

    np.savez(
        out_path, ssp_wave=wave, rest_sed=seds, weights=np.stack(weights), rest_mag=rest_mag,
        obs_mag=obs_mag, dmod=dmod, x64=np.array(bool(jax.config.jax_enable_x64)),
        ssp_lgmet=np.asarray(ssp.ssp_lgmet), ssp_lg_age_gyr=np.asarray(ssp.ssp_lg_age_gyr),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
