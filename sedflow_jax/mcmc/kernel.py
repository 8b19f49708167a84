"""The compiled run of one galaxy: numpyro ``MCMC(NUTS(collapsed_model))`` built inside the function.

:func:`make_run_one` builds ``run_one(key, flux_model, flux_obs, ivar, low, high)``, the whole run
(initialisation, warm-up, sampling) with ``MCMC`` constructed inside, so ``jax.jit(run_one)`` compiles
once and is reused for every galaxy with the same shapes (re-using an ``MCMC`` object recompiles on every
call: ``docs/style`` §2.3). :func:`make_extend` continues the chains from their last state.

Recorded per draw: ``theta_flow`` with log10 M* and t_burst drawn back (:func:`draw_mass_and_burst`),
the burst state ``burst_on`` and the sampler statistics.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr

from .config import NUTSConfig
from .model import burst_cut, collapsed_model, draw_mass_and_burst
from .starts import optimised_starts

__all__ = ["make_run_one", "make_extend", "kernel_and_mcmc", "DRAW_KEYS"]

#: per-draw outputs (chains, draws, ...) of a run and of an extension block
DRAW_KEYS = ("theta_flow", "burst_on", "diverging", "num_steps", "accept_prob", "potential_energy")
_FIELDS = ("diverging", "num_steps", "accept_prob", "potential_energy")  # numpyro extra fields


def kernel_and_mcmc(cfg: NUTSConfig, num_warmup: int):
    """numpyro NUTS kernel on :func:`collapsed_model` and its ``MCMC`` object (built inside jit)."""
    from numpyro.infer import MCMC, NUTS, init_to_median, init_to_uniform

    strategy = init_to_median(num_samples=15) if cfg.init == "median" else init_to_uniform(radius=2)
    kernel = NUTS(
        collapsed_model,
        dense_mass=cfg.dense_mass,
        target_accept_prob=cfg.target_accept_prob,
        max_tree_depth=cfg.max_tree_depth,
        init_strategy=strategy,
    )
    return MCMC(kernel, num_warmup=num_warmup, num_samples=cfg.num_samples, num_chains=cfg.num_chains,
                chain_method=cfg.chain_method, progress_bar=False)


def _collect(mcmc, key, flux_model, flux_obs, ivar, low, high) -> dict:
    """Per-chain draws of the sampling phase just run: theta_flow, burst_on, sampler statistics."""
    ex = mcmc.get_extra_fields(group_by_chain=True)
    out = {f: ex[f] for f in _FIELDS}
    rest = mcmc.get_samples(group_by_chain=True)["theta_rest"]  # (chains, draws, 10)
    keys = jr.split(key, rest.shape[0] * rest.shape[1]).reshape(rest.shape[:2])
    draw = lambda k, r: draw_mass_and_burst(k, r, flux_model, flux_obs, ivar, low, high)  # noqa: E731
    out["theta_flow"], out["burst_on"] = jax.vmap(jax.vmap(draw))(keys, rest)
    out["t_cut"] = burst_cut(flux_model, low, high)
    out["state"] = mcmc.last_state
    return out


def make_run_one(cfg: NUTSConfig):
    """``run_one(key, flux_model, flux_obs, ivar, low, high, init=None) -> dict`` of per-chain arrays.

    ``init``: ``(params, log_post)`` of :func:`~sedflow_jax.mcmc.starts.make_init` for these chains (the
    chain-split ``pmap`` searches once for all of a galaxy's chains); None: searched here
    (``init='optimize'``) or numpyro's strategy.

    Pure and jittable (``MCMC`` is built inside). Outputs: ``theta_flow`` (chains, draws, 11),
    ``burst_on`` (chains, draws) (the burst state s), ``diverging``, ``num_steps``, ``accept_prob``,
    ``potential_energy`` (chains, draws), ``warmup_num_steps`` (chains,) and ``init_log_post`` (chains,)
    (NaN unless ``init='optimize'``), ``t_cut`` (), and ``state``, the sampler state after the last draw
    (to continue sampling with :func:`make_extend`).
    """

    def run_one(key, flux_model, flux_obs, ivar, low, high, init=None):
        k_init, k_mcmc = jr.split(key)
        kwargs = dict(flux_model=flux_model, flux_obs_nmgy=flux_obs, ivar=ivar, low=low, high=high)
        init_params = None
        init_lp = jnp.full((cfg.num_chains,), jnp.nan, low.dtype)
        if init is not None:  # searched for all of the galaxy's chains together (make_init)
            init_params, init_lp = init
        elif cfg.init == "optimize":
            init_params, init_lp = optimised_starts(k_init, cfg, kwargs)
        if init_params is not None and cfg.num_chains == 1:
            init_params = jax.tree.map(lambda a: a[0], init_params)
        mcmc = kernel_and_mcmc(cfg, cfg.num_warmup)
        mcmc.warmup(k_mcmc, init_params=init_params, extra_fields=("num_steps",), collect_warmup=True, **kwargs)
        warm_steps = jnp.sum(mcmc.get_extra_fields(group_by_chain=True)["num_steps"], axis=1)
        mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=_FIELDS, **kwargs)
        out = _collect(mcmc, jr.fold_in(k_mcmc, 1), flux_model, flux_obs, ivar, low, high)
        out["warmup_num_steps"] = warm_steps
        out["init_log_post"] = init_lp
        return out

    return run_one


def make_extend(cfg: NUTSConfig):
    """``extend(key, state, flux_model, flux_obs, ivar, low, high) -> dict``: ``cfg.num_samples``
    more draws per chain from ``state`` (adapted step size and mass matrix kept; no warm-up).

    Same outputs as :func:`make_run_one` except ``warmup_num_steps`` and ``init_log_post``.
    """

    def extend(key, state, flux_model, flux_obs, ivar, low, high):
        kwargs = dict(flux_model=flux_model, flux_obs_nmgy=flux_obs, ivar=ivar, low=low, high=high)
        k_run, k_post = jr.split(key)
        mcmc = kernel_and_mcmc(cfg, 1)
        mcmc.post_warmup_state = state
        mcmc.run(k_run, extra_fields=_FIELDS, **kwargs)
        return _collect(mcmc, k_post, flux_model, flux_obs, ivar, low, high)

    return extend
