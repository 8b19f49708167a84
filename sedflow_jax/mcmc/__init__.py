"""NUTS reference posteriors (numpyro) for galaxy photometry under the SEDflow prior.

* :func:`photometry_model`: the numpyro model (flat SEDflow box in flow space, Gaussian flux
  likelihood in nanomaggies); :func:`burst_split_model`: the same posterior with t_burst split at
  the burst cut into a Bernoulli indicator and a uniform coordinate (sampled by NUTS-within-Gibbs).
* :func:`run_nuts` / :func:`run_nuts_batch`: compiled runs with diagnostics, returning
  :class:`NUTSResult` (ArviZ InferenceData + convergence verdict).
"""

from .model import (
    AtRedshift,
    burst_cut,
    burst_split_model,
    check_photometry,
    log_likelihood,
    photometry_model,
    split_log_jacobian,
    split_to_t_burst,
)
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
    "burst_cut",
    "burst_split_model",
    "split_log_jacobian",
    "split_to_t_burst",
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
