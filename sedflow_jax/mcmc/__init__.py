"""NUTS reference posteriors (numpyro) for galaxy photometry under the SEDflow prior.

NUTS samples :func:`collapsed_model`: the SEDflow posterior with log10 M* and the burst switch
integrated out exactly (:mod:`~sedflow_jax.mcmc.marginal`); :func:`draw_mass_and_burst` draws both
back for every draw. :func:`photometry_model` is the un-collapsed posterior (the tests' reference).

Modules: :mod:`.config` (:class:`NUTSConfig`, warning/error), :mod:`.model` and :mod:`.marginal` (the
densities), :mod:`.starts` (the optimised start search), :mod:`.kernel` (the numpyro run built inside
jit), :mod:`.devices` (chains over local devices; :class:`CompiledRuns`, the compile cache a caller
holds), :mod:`.diagnostics` (:func:`diagnose`), :mod:`.result` (:class:`NUTSResult`, InferenceData),
:mod:`.drivers` (:func:`run_nuts`, :func:`run_nuts_batch`, the extension loop).
"""

from .config import NotConvergedError, NotConvergedWarning, NUTSConfig
from .devices import CompiledRuns
from .diagnostics import diagnose
from .drivers import fixed_redshift_models, run_nuts, run_nuts_batch
from .kernel import make_extend, make_run_one
from .model import (
    AtRedshift,
    burst_cut,
    collapsed_log_likelihood,
    collapsed_model,
    draw_mass_and_burst,
    photometry_model,
)
from .result import NUTSResult

__all__ = [
    "AtRedshift",
    "CompiledRuns",
    "NUTSConfig",
    "NUTSResult",
    "NotConvergedError",
    "NotConvergedWarning",
    "burst_cut",
    "collapsed_log_likelihood",
    "collapsed_model",
    "diagnose",
    "draw_mass_and_burst",
    "fixed_redshift_models",
    "make_extend",
    "make_run_one",
    "photometry_model",
    "run_nuts",
    "run_nuts_batch",
]
