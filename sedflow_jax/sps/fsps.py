"""Build an SSP table with python-fsps using the PROVABGS settings (optional; needs FSPS data).

PROVABGS builds its SSPs with ``fsps.StellarPopulation(zcontinuous=1, sfh=0, dust_type=4,
imf_type=1)`` (MIST isochrones, MILES spectra, Chabrier IMF 0.08-120 Msun, zsol_MIST = 0.0142;
``docs/provabgs_model.md`` section 6). For a dust-free, nebular-free table this module calls, for
each native MIST metallicity ``Z_i`` (``sp.zlegend``), ``logzsol = log10(Z_i / 0.0142)`` (exactly a
native grid point, so no interpolation in Z happens inside FSPS), then
``get_spectrum(tage=0, peraa=False)``, which returns every native age, L_nu in Lsun/Hz per Msun
formed, and ``sp.stellar_mass`` (living + remnants, ``add_stellar_remnants=1``) per age. The
spectra are rebinned flux-conservingly in L_lambda onto log bins, like the BC03 table.

FSPS cannot be installed from PyPI with its data: ``pip install fsps`` builds the code, and the
environment variable ``SPS_HOME`` must point at a checkout of https://github.com/cconroy20/fsps
(isochrone and spectral data). Not exercised in the test suite.
"""

from __future__ import annotations

import os

import numpy as np

from sedflow_jax.errors import InputError
from sedflow_jax.sps.resample import log_wave_edges, rebin_flux_conserving
from sedflow_jax.sps.table import SSPTable

__all__ = ["FSPS_ZSOL_MIST", "build_fsps_table"]

#: Solar metallicity of the MIST isochrones in FSPS (absolute Z).
FSPS_ZSOL_MIST = 0.0142
_C_AA_PER_S = 2.99792458e18

_INSTALL_HELP = (
    "Building an FSPS SSP table needs python-fsps and the FSPS data files: "
    "`pip install fsps` (or `pip install 'sedflow_jax[fsps]'`), then "
    "`git clone https://github.com/cconroy20/fsps /path/to/fsps` and "
    "`export SPS_HOME=/path/to/fsps`. FSPS must be compiled with MIST isochrones and MILES spectra "
    "(the defaults) to match PROVABGS."
)


def _import_fsps():
    """Import python-fsps, raising RuntimeError with install instructions when unavailable."""
    if not os.environ.get("SPS_HOME"):
        raise InputError(f"the environment variable SPS_HOME is not set. {_INSTALL_HELP}")
    try:
        import fsps  # noqa: PLC0415  (top-level python-fsps, not this module)
    except Exception as err:  # ImportError, or FSPS' own errors about missing data files
        raise RuntimeError(f"cannot import python-fsps ({type(err).__name__}: {err}). {_INSTALL_HELP}") from err
    return fsps


def build_fsps_table(
    n_wave: int = 2000,
    wave_min_aa: float = 900.0,
    wave_max_aa: float = 30000.0,
    *,
    zsol: float = FSPS_ZSOL_MIST,
) -> SSPTable:
    """SSP table from python-fsps with the PROVABGS configuration, no dust and no nebular emission.

    Args:
        n_wave: number of log-spaced wavelength bins.
        wave_min_aa: lower edge of the first bin, rest frame, Angstrom.
        wave_max_aa: upper edge of the last bin, rest frame, Angstrom.
        zsol: solar metallicity used to turn ``zlegend`` into ``logzsol`` (MIST: 0.0142).

    Returns:
        SSPTable over the native FSPS metallicities (``sp.zlegend``) and ages (``sp.ssp_ages``),
        L_nu in Lsun/Hz per Msun formed, surviving mass = ``sp.stellar_mass`` (living + remnants);
        no living-only fraction (None).

    Raises:
        InputError: if ``SPS_HOME`` is not set; RuntimeError: if python-fsps cannot be imported.
    """
    fsps = _import_fsps()
    sp = fsps.StellarPopulation(zcontinuous=1, sfh=0, dust_type=4, imf_type=1)
    sp.params["add_neb_emission"] = False
    sp.params["dust1"] = 0.0
    sp.params["dust2"] = 0.0
    zlegend = np.asarray(sp.zlegend, dtype=np.float64)
    log_age_yr = np.asarray(sp.ssp_ages, dtype=np.float64)
    edges, centres = log_wave_edges(wave_min_aa, wave_max_aa, n_wave)

    lnu_rows, mass_rows, wave_native = [], [], None
    for z in zlegend:
        sp.params["logzsol"] = float(np.log10(z / zsol))
        wave, spec = sp.get_spectrum(tage=0, peraa=False)  # (n_wave_native,), (n_age, n_wave_native)
        wave = np.asarray(wave, dtype=np.float64)
        spec = np.asarray(spec, dtype=np.float64)
        if spec.shape != (log_age_yr.shape[0], wave.shape[0]):
            raise RuntimeError(f"FSPS get_spectrum(tage=0) returned shape {spec.shape}, expected "
                               f"({log_age_yr.shape[0]}, {wave.shape[0]})")
        if wave_native is None:
            wave_native = wave
        elif not np.array_equal(wave, wave_native):
            raise RuntimeError("FSPS wavelength grid changed between metallicities")
        llam = spec * _C_AA_PER_S / wave**2  # Lsun/A per Msun formed: rebin a density per unit wavelength
        lnu_rows.append(rebin_flux_conserving(wave, llam, edges) * centres**2 / _C_AA_PER_S)
        mass_rows.append(np.asarray(sp.stellar_mass, dtype=np.float64).reshape(-1))

    lnu = np.stack(lnu_rows)
    n_negative = int(np.sum(lnu < 0))
    lnu = np.maximum(lnu, 0.0)  # FSPS can return tiny negative values; L_nu >= 0 is required
    # Mass at the youngest age is 1 up to rounding; clip so validation's (0, 1] holds.
    surv = np.minimum(np.stack(mass_rows), 1.0)
    attrs = _fsps_attrs(fsps, sp, zsol, n_wave, wave_min_aa, wave_max_aa, n_negative)
    return SSPTable(
        log10_zmet=np.log10(zlegend),
        log10_age_gyr=log_age_yr - 9.0,
        wave_aa=centres,
        lnu_lsun_per_hz_per_msun=lnu,
        mstar_surv_frac=surv,
        wave_edges_aa=edges,
        mstar_liv_frac=None,
        attrs=attrs,
    )


def _fsps_attrs(fsps, sp, zsol: float, n_wave: int, wave_min_aa: float, wave_max_aa: float, n_negative: int) -> dict:
    """The table's provenance attributes (FSPS version, libraries, settings, units, citations)."""
    libraries = getattr(sp, "libraries", None)
    if libraries is not None:  # e.g. (b'mist', b'miles', b'DL07  ')
        libraries = tuple((x.decode() if isinstance(x, bytes) else str(x)).strip() for x in libraries)
    return {
        "kind": "fsps",
        "source_file": "python-fsps " + str(getattr(fsps, "__version__", "unknown")),
        "sps_home": os.environ.get("SPS_HOME", ""),
        "fsps_libraries": "" if libraries is None else repr(libraries),
        "fsps_settings": "zcontinuous=1 sfh=0 dust_type=4 imf_type=1 add_neb_emission=False dust1=dust2=0 "
        f"logzsol=log10(zlegend/{zsol}) get_spectrum(tage=0, peraa=False)",
        "imf": "Chabrier2003 0.08-120",
        "isochrones": "MIST (assumed)" if libraries is None else libraries[0],
        "library": "MILES (assumed)" if libraries is None else libraries[1],
        "zsun": repr(float(zsol)),
        # PROVABGS converts FSPS Lsun/Hz to erg/s with 3.846e33 (FSPS itself uses 3.839e33):
        # record what reproduces PROVABGS fluxes.
        "lsun_erg_per_s": "3.846e33",
        "flux_unit": "L_nu [Lsun/Hz per Msun formed], rest frame, bin average of L_lambda converted at bin centre",
        "wave_unit": "Angstrom, rest frame, vacuum (FSPS)",
        "wave_sampling": "log",
        "n_wave": str(int(n_wave)),
        "wave_min_aa": repr(float(wave_min_aa)),
        "wave_max_aa": repr(float(wave_max_aa)),
        "mstar_surv": "FSPS stellar_mass (living + remnants, add_stellar_remnants=1)",
        "negative_flux_clipped": str(n_negative),
        "builder": "sedflow_jax.sps.fsps.build_fsps_table",
        "builder_version": "1",
        "citations": "Conroy, Gunn & White 2009, ApJ 699, 486; Conroy & Gunn 2010, ApJ 712, 833; "
        "Choi et al. 2016, ApJ 823, 102 (MIST); Chabrier 2003, PASP 115, 763",
    }
