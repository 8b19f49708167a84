"""Settings of a NUTS run and the convergence warning/error."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

__all__ = ["NUTSConfig", "NotConvergedWarning", "NotConvergedError", "INIT_METHODS", "CHAIN_METHODS"]

INIT_METHODS = ("optimize", "median", "uniform")
CHAIN_METHODS = ("vectorized", "sequential")


class NotConvergedWarning(UserWarning):
    """A galaxy's chains failed the convergence criteria (see ``NUTSResult.diagnostics``)."""


class NotConvergedError(RuntimeError):
    """Raised instead of the warning when ``require_converged=True``."""


@dataclass(frozen=True)
class NUTSConfig:
    """Settings of one NUTS run of the collapsed sampler (saved with every result).

    NUTS runs on :func:`~sedflow_jax.mcmc.model.collapsed_model` (log10 M* and the burst state integrated
    out, both drawn back exactly for every draw). The options measured worse (the Gibbs/split sampler,
    plain NUTS, burst jumps, joint f_burst integrals, Laplace start selection) were removed; the
    measurements are in ``docs/nuts.md``.

    Attributes:
        num_warmup, num_samples, num_chains: per chain.
        dense_mass: dense (True) or diagonal mass matrix adapted in warm-up.
        target_accept_prob, max_tree_depth: NUTS settings.
        chain_method: ``'vectorized'`` (chains vmapped on one device, or spread over local devices) or
            ``'sequential'``.
        init: ``'optimize'`` (multi-start Adam, default), ``'median'`` (numpyro
            ``init_to_median``) or ``'uniform'`` (numpyro ``init_to_uniform``, radius 2).
        init_draws, init_keep, init_steps, init_lr: the ``'optimize'`` search, per chain: ``init_draws``
            prior draws, the best ``init_keep`` by log posterior improved by ``init_steps`` Adam steps
            (learning rate ``init_lr``, cosine decay); the chain starts from the best of them.
        rhat_max, ess_min, max_divergence_fraction: convergence criteria (rank-normalised split
            R-hat < rhat_max and bulk and tail ESS >= ess_min for every parameter, and at most this
            fraction of the post-warm-up transitions divergent). The model's SSPs are interpolated
            linearly in log Z and log age (as FSPS does), so its log density has kinks, and a few
            divergences per thousand transitions occur there even in well-mixed runs; the count is
            always reported (``n_divergent``). Set 0 for the strict rule.
        max_extensions: while R-hat or ESS fail, continue every chain by another ``num_samples``
            draws from where it stopped (same adaptation, no new warm-up), at most this many times;
            divergences alone do not trigger an extension. The work per block is bounded (draws x
            2^max_tree_depth leapfrog steps), so a galaxy never stalls.
    """

    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4
    dense_mass: bool = True
    target_accept_prob: float = 0.9
    max_tree_depth: int = 10
    chain_method: str = "vectorized"
    init: str = "optimize"
    init_draws: int = 64
    init_keep: int = 4
    init_steps: int = 300
    init_lr: float = 0.05
    rhat_max: float = 1.01
    ess_min: float = 400.0
    max_divergence_fraction: float = 0.01
    max_extensions: int = 3

    def __post_init__(self):
        if int(self.max_extensions) < 0:
            raise ValueError(f"NUTSConfig.max_extensions must be >= 0, got {self.max_extensions}")
        for name in ("num_warmup", "num_samples", "num_chains", "max_tree_depth", "init_draws", "init_keep"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"NUTSConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.init_steps < 0:
            raise ValueError(f"NUTSConfig.init_steps must be >= 0, got {self.init_steps}")
        if self.init_keep > self.init_draws:
            raise ValueError(f"NUTSConfig.init_keep ({self.init_keep}) > init_draws ({self.init_draws})")
        if not (0.0 < self.target_accept_prob < 1.0):
            raise ValueError(f"target_accept_prob must lie in (0, 1), got {self.target_accept_prob}")
        if self.chain_method not in CHAIN_METHODS:
            raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, got {self.chain_method!r}")
        if self.init not in INIT_METHODS:
            raise ValueError(f"init must be one of {INIT_METHODS}, got {self.init!r}")
        if self.num_chains < 2:
            warnings.warn("num_chains < 2: split R-hat uses the halves of one chain only", stacklevel=3)

    def compile_key(self) -> NUTSConfig:
        """The config with the host-side settings (criteria, extension count) at their defaults: runs that
        differ only there share one compiled program."""
        import dataclasses

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dataclasses.replace(self, rhat_max=1.01, ess_min=400.0, max_divergence_fraction=0.01,
                                       max_extensions=0)
