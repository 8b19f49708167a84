"""NUTS reference posteriors (numpyro) for galaxy photometry under the SEDflow prior.

* :func:`photometry_model`: the numpyro model (flat SEDflow box in flow space, Gaussian flux
  likelihood in nanomaggies); :func:`collapsed_model` (the default sampler's): the same posterior
  with log10 M* and the burst switch integrated out exactly (:mod:`~sedflow_jax.mcmc.marginal`),
  both drawn back by :func:`draw_mass_and_burst`; :func:`burst_split_model`: t_burst split into a
  Bernoulli indicator and a uniform coordinate (NUTS-within-Gibbs, kept for comparison).
* :func:`run_nuts` / :func:`run_nuts_batch`: compiled runs with diagnostics, returning
  :class:`NUTSResult` (ArviZ InferenceData + convergence verdict).
"""

from .model import (
    AtRedshift,
    collapsed_log_likelihood,
    collapsed_model,
    draw_mass_and_burst,
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
    make_extend,
    make_run_one,
    run_nuts,
    run_nuts_batch,
)

__all__ = [
    "AtRedshift",
    "collapsed_log_likelihood",
    "collapsed_model",
    "draw_mass_and_burst",
    "make_extend",
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
