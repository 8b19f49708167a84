"""Where each chain starts: a multi-start Adam search on the collapsed model's log posterior.

PROVABGS's recipe (optimise, then sample) made multi-start: for every chain independently,
``init_draws`` points are drawn from the prior box, the best ``init_keep`` by log posterior are each
improved by ``init_steps`` Adam steps on numpyro's unconstrained log posterior, and the chain starts
from the best of them. Each chain does its own search, so chains that end in different modes still
disagree and R-hat reports it (``docs/nuts.md``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr

from .config import NUTSConfig
from .model import T_BURST_INDEX, collapsed_model

__all__ = ["optimised_starts", "make_init", "start_key", "extension_key"]


def start_key(key):
    """The key of the start search within a galaxy's run key (the run splits it into search, sampler)."""
    return jr.split(key)[0]


def extension_key(key):
    """A key for the extension blocks of the run with key ``key``: the half of the start-search key that
    the search leaves unused (:func:`optimised_starts` draws from the other half), so it is independent of
    every key the first block uses and the first block's draws do not depend on it."""
    return jr.split(start_key(key))[1]


def optimised_starts(key, cfg: NUTSConfig, kw: dict):
    """Per chain, the best of a multi-start Adam search on numpyro's unconstrained log posterior.

    ``key``: the start-search key (:func:`start_key`); ``kw``: the model arguments. Returns
    ``(params, log_post)``: ``params`` maps ``theta_rest`` to (num_chains, 10) unconstrained starting
    values, ``log_post`` (num_chains,) their log posterior.
    """
    import optax
    from numpyro.distributions import constraints
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer.util import potential_energy

    low, high = kw["low"], kw["high"]
    # the collapsed coordinates: t_burst's slot holds a position in (0, 1); log10 M* is integrated out
    lo_c, hi_c = low.at[T_BURST_INDEX].set(0.0)[1:], high.at[T_BURST_INDEX].set(1.0)[1:]
    tr = biject_to(constraints.interval(lo_c, hi_c))

    def logp(x):
        return -potential_energy(collapsed_model, (), kw, {"theta_rest": x})

    n_c, n_d, n_k = cfg.num_chains, cfg.init_draws, cfg.init_keep
    k_u, _ = jr.split(key)  # the other half is extension_key's
    # stay a little inside the box: the logit of an edge draw would be huge
    width = hi_c - lo_c
    u = jr.uniform(k_u, (n_c, n_d, lo_c.shape[0]), low.dtype, lo_c + 1e-3 * width, hi_c - 1e-3 * width)
    x = tr.inv(u)
    lp = jax.vmap(jax.vmap(logp))(x)
    lp = jnp.where(jnp.isfinite(lp), lp, -jnp.inf)
    _, idx = jax.lax.top_k(lp, n_k)  # (n_c, n_k)
    x = jnp.take_along_axis(x, idx[..., None], axis=1).reshape(n_c * n_k, -1)
    if cfg.init_steps > 0:
        opt = optax.adam(optax.cosine_decay_schedule(cfg.init_lr, cfg.init_steps, alpha=0.02))

        def descend(x0):
            neg = lambda v: -logp(v)  # noqa: E731

            def step(carry, _):
                xx, st = carry
                val, g = jax.value_and_grad(neg)(xx)
                g = jnp.where(jnp.isfinite(g), g, 0.0)
                upd, st = opt.update(g, st, xx)
                return (optax.apply_updates(xx, upd), st), val

            (xf, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), None, length=cfg.init_steps)
            return xf

        x = jax.vmap(descend)(x)
    lp = jax.vmap(logp)(x)  # (n_c * n_k,), candidates of chain c at [c * n_k, (c + 1) * n_k)
    lp = jnp.where(jnp.isfinite(lp), lp, -jnp.inf)  # non-finite scores rank last
    pick = jnp.arange(n_c) * n_k + jnp.argmax(lp.reshape(n_c, n_k), axis=1)
    return {"theta_rest": x[pick]}, lp[pick]


def make_init(cfg: NUTSConfig):
    """``init(key, flux_model, flux_obs, ivar, low, high) -> (params, log_post)``: the ``'optimize'``
    starts of all ``cfg.num_chains`` chains, from the same key that the run with key ``key`` uses."""

    def init(key, flux_model, flux_obs, ivar, low, high):
        kwargs = dict(flux_model=flux_model, flux_obs_nmgy=flux_obs, ivar=ivar, low=low, high=high)
        return optimised_starts(start_key(key), cfg, kwargs)

    return init
