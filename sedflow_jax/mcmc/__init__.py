"""NUTS reference posteriors (numpyro) for galaxy photometry under the SEDflow prior.

* :func:`photometry_model`: the numpyro model (flat SEDflow box in flow space, Gaussian flux
  likelihood in nanomaggies).
* :func:`run_nuts` / :func:`run_nuts_batch`: compiled runs with diagnostics, returning
  :class:`NUTSResult` (ArviZ InferenceData + convergence verdict).
"""

from .model import AtRedshift, check_photometry, log_likelihood, photometry_model
from .run import (
    NotConvergedError,
    NotConvergedWarning,
    NUTSConfig,
    NUTSResult,
    diagnose,
    fixed_redshift_models,
    make_run_one,
    run_nuts,
    run_nuts_batch,
)

__all__ = [
    "AtRedshift",
    "NUTSConfig",
    "NUTSResult",
    "NotConvergedError",
    "NotConvergedWarning",
    "check_photometry",
    "diagnose",
    "fixed_redshift_models",
    "log_likelihood",
    "make_run_one",
    "photometry_model",
    "run_nuts",
    "run_nuts_batch",
]
