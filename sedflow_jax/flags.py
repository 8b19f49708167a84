"""One vocabulary of per-row flags, shared by training sets, catalogues and posterior files.

A flag is a bit in a ``uint8`` mask; each name has one bit everywhere it is written:

===================== === ===============================================================================
name                  bit meaning
===================== === ===============================================================================
missing_value           1 a NaN / inf / masked flux, error, magnitude or redshift
flux_nonpositive        2 a flux <= 0 (its magnitude, and so the flow's x, is undefined)
error_nonpositive       4 an inverse variance or magnitude error <= 0 (simulations: a drawn sigma_m <= 0)
redshift_outside_range  8 z outside the range the model or flow covers (catalogues: the flow's training
                          range; simulations: the SED model's [0, z_max])
outside_support        16 x far from every simulated galaxy (kNN support score above its threshold):
                          samples drawn, use with care (catalogues only)
outside_mag_range      32 noiseless magnitude outside the reference range (simulations with a mag cut only)
===================== === ===============================================================================

Training rows are those with ``flags == 0``; catalogue rows with any bit of :data:`INVALID_MASK` get
no samples (NaN outputs), rows with only ``outside_support`` are inferred and flagged.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FLAGS", "INVALID_MASK", "flag_reasons"]

FLAGS: dict[str, int] = {
    "missing_value": 1,
    "flux_nonpositive": 2,
    "error_nonpositive": 4,
    "redshift_outside_range": 8,
    "outside_support": 16,
    "outside_mag_range": 32,
}
#: Catalogue rows with any of these bits get no samples (NaN outputs).
INVALID_MASK = FLAGS["missing_value"] | FLAGS["flux_nonpositive"] | FLAGS["error_nonpositive"] | FLAGS["redshift_outside_range"]


def flag_reasons(flags: np.ndarray) -> list[str]:
    """Comma-separated flag names per row ('' for clean rows)."""
    return [",".join(k for k, b in FLAGS.items() if int(f) & b) for f in np.asarray(flags).ravel()]
