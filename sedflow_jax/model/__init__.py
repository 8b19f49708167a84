"""The PROVABGS NMF + burst SED model: pure JAX kernels for one galaxy, batch wrappers on top."""

from .basis import NMFBasis, load_default_basis, load_provabgs_basis, save_basis
from .batch import photometry_batch, properties_batch, validate_inputs
from .cosmology import Cosmology, planck13
from .dust import DustCurves, kc13_curve
from .filters import FilterSet, load_filters
from .provabgs import ZMET_MAX, ZMET_MIN, ProvabgsModel

__all__ = [
    "Cosmology",
    "DustCurves",
    "FilterSet",
    "NMFBasis",
    "ProvabgsModel",
    "ZMET_MAX",
    "ZMET_MIN",
    "kc13_curve",
    "load_default_basis",
    "load_filters",
    "load_provabgs_basis",
    "photometry_batch",
    "planck13",
    "properties_batch",
    "save_basis",
    "validate_inputs",
]
