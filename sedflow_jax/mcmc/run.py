"""NUTS reference posteriors for galaxy photometry: one compiled run per galaxy, batched drivers.

Layers (``docs/style`` §2.3):

* :func:`make_run_one` builds ``run_one(key, flux_model, flux_obs, ivar, low, high)``, the whole
  run (initialisation, warm-up, sampling) for one galaxy with ``MCMC(NUTS(...))`` constructed
  inside, so ``jax.jit(run_one)`` compiles once and is reused for every galaxy with the same
  shapes (re-using an ``MCMC`` object recompiles on every call);
* :func:`run_nuts` is the host driver for one galaxy: input checks, the fixed-redshift model,
  the compiled run, diagnostics and an ArviZ ``InferenceData``;
* :func:`run_nuts_batch` loops over a catalogue with one cached compile (or ``vmap`` over
  galaxies, or ``pmap`` over devices when there are several), yielding one result per galaxy.

Samplers: ``"collapsed"`` (the default) runs NUTS on the 10 coordinates left after integrating
log10 M* and the burst state out of the posterior (:func:`~sedflow_jax.mcmc.model.collapsed_model`)
and draws both back exactly for every draw; ``"gibbs"`` is NUTS-within-Gibbs on
:func:`~sedflow_jax.mcmc.model.burst_split_model`, where t_burst is split at the model's burst cut
into a Bernoulli indicator (modified-Gibbs / Metropolis flips, numpyro ``DiscreteHMCGibbs``) and a
uniform coordinate (NUTS with the other 10). The posterior is exactly the original one for both;
plain NUTS (``sampler="nuts"``) cannot cross the likelihood jump at the cut. Recorded:
``theta_flow`` with log10 M* and t_burst mapped back, and the burst state ``burst_on``.

Initialisation ("optimize", the default): for every chain independently, ``init_draws`` points
(half with the burst on, half off) are drawn from the prior box, the best ``init_keep`` by
posterior density are each improved by
``init_steps`` Adam steps on the unconstrained log posterior, and the chain starts from the best
of them. This is PROVABGS's recipe (optimise, then sample) made multi-start; each chain does its
own search, so chains that end in different modes still disagree and R-hat reports it. See
``docs/nuts.md`` for the measurements behind the choice.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..params import FLOW_NAMES, THETA_NAMES
from ..priors.sedflow import flow_to_physical
from .jump import JumpNUTS
from .model import (
    F_BURST_INDEX,
    T_BURST_INDEX,
    burst_cut,
    burst_split_model,
    check_photometry,
    collapsed_model,
    draw_mass_and_burst,
    photometry_model,
)

__all__ = [
    "NUTSConfig",
    "NUTSResult",
    "NotConvergedWarning",
    "NotConvergedError",
    "make_run_one",
    "run_nuts",
    "run_nuts_batch",
    "fixed_redshift_models",
]

INIT_METHODS = ("optimize", "median", "uniform")
INIT_SELECT = ("density", "laplace")
#: init_select='laplace': a chain's best start is replaced when its Laplace mass is this far (nats) below the best
LAPLACE_GAP_NATS = 5.0
SAMPLERS = ("collapsed", "gibbs", "nuts")
CHAIN_METHODS = ("vectorized", "sequential")


class NotConvergedWarning(UserWarning):
    """A galaxy's chains failed the convergence criteria (see ``NUTSResult.diagnostics``)."""


class NotConvergedError(RuntimeError):
    """Raised instead of the warning when ``require_converged=True``."""


@dataclass(frozen=True)
class NUTSConfig:
    """Settings of one NUTS run (saved with every result).

    Attributes:
        sampler: ``'collapsed'`` (default): NUTS on :func:`~sedflow_jax.mcmc.model.collapsed_model` (log10 M*
            and the burst state integrated out, both drawn back exactly per draw); ``'gibbs'``:
            NUTS-within-Gibbs on :func:`~sedflow_jax.mcmc.model.burst_split_model`
            (numpyro ``DiscreteHMCGibbs(NUTS, modified=True)``; exact across the burst cut);
            ``'nuts'``: plain NUTS on :func:`~sedflow_jax.mcmc.model.photometry_model` (cannot cross
            the burst cut; kept for comparison).
        joint_off: (collapsed sampler only) integrate log10 M* and f_burst jointly out of the burst-off
            state (its term then does not depend on the burst coordinates) instead of log10 M* alone at
            the sampled f_burst. Same posterior. It removes the steep wall that the mass box puts in the
            off state and halves the divergences, but t_burst mixes worse, so on the 20 benchmark
            galaxies it converged no more often and took longer: off by default (``docs/nuts.md``).
            Needs the SEDflow f_burst box [0, 1].
        joint_on: (collapsed sampler) integrate f_burst out of the burst-on state too
            (``marginal.log_on_burst_integral``); with joint_off, q is then a dummy. Same posterior, same
            box requirement; off by default (no fewer divergences on the galaxies tried, ``docs/nuts.md``).
        profile_mass: (Gibbs sampler only; ignored by 'nuts') sample log10 M* as an offset from its profile maximum
            given the other parameters (:func:`~sedflow_jax.mcmc.model.mass_from_offset`).
        off_power: (Gibbs sampler only) f_burst = w^(1/off_power) while the burst is off
            (:func:`~sedflow_jax.mcmc.model.off_fburst`); 1 = no change.
        jump_tries: (collapsed sampler only) after every NUTS transition, an independent
            multiple-try Metropolis jump of the burst coordinates (w, q) with this many uniform
            proposals (:class:`~sedflow_jax.mcmc.jump.JumpNUTS`); 0 = NUTS alone.
        num_warmup, num_samples, num_chains: per chain.
        dense_mass: dense (True) or diagonal mass matrix adapted in warm-up.
        target_accept_prob, max_tree_depth: NUTS settings.
        chain_method: ``'vectorized'`` (chains vmapped on one device) or ``'sequential'``.
        init: ``'optimize'`` (multi-start Adam, default), ``'median'`` (numpyro
            ``init_to_median``) or ``'uniform'`` (numpyro ``init_to_uniform``, radius 2).
        init_draws, init_keep, init_steps, init_lr: the ``'optimize'`` search, per chain.
        init_select: how ``'optimize'`` picks each chain's start among its ``init_keep`` optimised
            candidates: ``'density'`` (the highest log posterior) or ``'laplace'`` (the largest Laplace
            estimate of the posterior mass around it, log p - 1/2 log det(-H), H the Hessian of the
            log posterior in the unconstrained coordinates, its eigenvalues floored at 0.1), which
            passes over narrow spikes that hold little mass; a chain whose best candidate scores more
            than ``LAPLACE_GAP_NATS`` (5) below the best chain's starts from another chain's candidate.
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

    sampler: str = "collapsed"
    joint_off: bool = False
    joint_on: bool = False
    profile_mass: bool = True
    off_power: float = 4.0
    jump_tries: int = 0
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
    init_select: str = "density"
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
        if int(self.jump_tries) < 0:
            raise ValueError(f"NUTSConfig.jump_tries must be >= 0, got {self.jump_tries}")
        if self.jump_tries and self.sampler != "collapsed":
            raise ValueError("jump_tries applies to sampler='collapsed' only")
        if self.init_steps < 0:
            raise ValueError(f"NUTSConfig.init_steps must be >= 0, got {self.init_steps}")
        if self.init_keep > self.init_draws:
            raise ValueError(f"NUTSConfig.init_keep ({self.init_keep}) > init_draws ({self.init_draws})")
        if not (0.0 < self.target_accept_prob < 1.0):
            raise ValueError(f"target_accept_prob must lie in (0, 1), got {self.target_accept_prob}")
        if self.chain_method not in CHAIN_METHODS:
            raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, got {self.chain_method!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if not self.off_power > 0:
            raise ValueError(f"off_power must be > 0, got {self.off_power}")
        if self.init_select not in INIT_SELECT:
            raise ValueError(f"init_select must be one of {INIT_SELECT}, got {self.init_select!r}")
        if self.init not in INIT_METHODS:
            raise ValueError(f"init must be one of {INIT_METHODS}, got {self.init!r}")
        if self.num_chains < 2:
            warnings.warn("num_chains < 2: split R-hat uses the halves of one chain only", stacklevel=3)


@dataclass
class NUTSResult:
    """One galaxy: posterior as InferenceData, diagnostics, and whether it converged."""

    idata: Any
    diagnostics: dict
    converged: bool

    def to_netcdf(self, path) -> None:
        """Write the InferenceData atomically (temporary file beside ``path``, then rename)."""
        from ..io.atomic import atomic_path

        with atomic_path(path) as tmp:
            self.idata.to_netcdf(str(tmp), engine="h5netcdf")


# ----------------------------------------------------------------------------- compiled kernel
def _model_fn(cfg: NUTSConfig):
    if cfg.sampler == "collapsed":
        return functools.partial(collapsed_model, joint_off=cfg.joint_off, joint_on=cfg.joint_on)
    if cfg.sampler == "gibbs":
        return functools.partial(burst_split_model, profile_mass=cfg.profile_mass, off_power=cfg.off_power)
    return photometry_model


def _flat_to_sites(cfg: NUTSConfig, x):
    """Unconstrained (..., 11) vector (10 for the collapsed sampler) -> the model's continuous sites."""
    if cfg.sampler == "nuts":
        return {"theta_flow": x}
    if cfg.sampler == "collapsed":
        return {"theta_rest": x}
    if cfg.profile_mass:
        return {"mass_offset": x[..., 0], "theta_rest": x[..., 1:]}
    return {"theta_flow_u": x}


def _optimised_init(key, cfg: NUTSConfig, kw: dict):
    """Per chain, the best of a multi-start Adam search on numpyro's unconstrained log posterior.

    Returns ``(params, log_post)``: ``params`` maps site names to (num_chains, ...) starting values
    (``theta_flow_u`` unconstrained, and ``burst_on`` for the Gibbs sampler, where half of each
    chain's starts have the burst on and half off, so both sides of the cut are searched).
    """
    import optax
    from numpyro.distributions import constraints
    from numpyro.distributions.transforms import biject_to
    from numpyro.handlers import condition
    from numpyro.infer.util import potential_energy

    low, high = kw["low"], kw["high"]
    gibbs = cfg.sampler == "gibbs"
    collapsed = cfg.sampler == "collapsed"
    model = _model_fn(cfg)
    lo_c, hi_c = low, high
    if gibbs or collapsed:
        lo_c, hi_c = low.at[T_BURST_INDEX].set(0.0), high.at[T_BURST_INDEX].set(1.0)
    if collapsed:  # log10 M* is integrated out
        lo_c, hi_c = lo_c[1:], hi_c[1:]
    tr = biject_to(constraints.interval(lo_c, hi_c))

    def logp(x, s):
        m = condition(model, {"burst_on": s}) if gibbs else model  # discrete site held fixed
        return -potential_energy(m, (), kw, _flat_to_sites(cfg, x))

    n_c, n_d, n_k = cfg.num_chains, cfg.init_draws, cfg.init_keep
    k_u, _ = jr.split(key)
    # stay a little inside the box: the logit of an edge draw would be huge
    width = hi_c - lo_c
    u = jr.uniform(k_u, (n_c, n_d, lo_c.shape[0]), low.dtype, lo_c + 1e-3 * width, hi_c - 1e-3 * width)
    x = tr.inv(u)
    if gibbs and cfg.profile_mass:  # start at the profile maximum of the mass
        x = x.at[..., 0].set(0.0)
    s = jnp.broadcast_to((jnp.arange(n_d) % 2).astype(jnp.int32), (n_c, n_d))
    lp = jax.vmap(jax.vmap(logp))(x, s)
    lp = jnp.where(jnp.isfinite(lp), lp, -jnp.inf)
    _, idx = jax.lax.top_k(lp, n_k)  # (n_c, n_k)
    x = jnp.take_along_axis(x, idx[..., None], axis=1).reshape(n_c * n_k, -1)
    s = jnp.take_along_axis(s, idx, axis=1).reshape(n_c * n_k)
    if cfg.init_steps > 0:
        opt = optax.adam(optax.cosine_decay_schedule(cfg.init_lr, cfg.init_steps, alpha=0.02))

        def descend(x0, s0):
            neg = lambda v: -logp(v, s0)  # noqa: E731

            def step(carry, _):
                xx, st = carry
                val, g = jax.value_and_grad(neg)(xx)
                g = jnp.where(jnp.isfinite(g), g, 0.0)
                upd, st = opt.update(g, st, xx)
                return (optax.apply_updates(xx, upd), st), val

            (xf, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), None, length=cfg.init_steps)
            return xf

        x = jax.vmap(descend)(x, s)
    lp = jax.vmap(logp)(x, s)  # (n_c * n_k,), candidates of chain c at [c * n_k, (c + 1) * n_k)
    lp = jnp.where(jnp.isfinite(lp), lp, -jnp.inf)
    pick = _pick_starts(_start_scores(logp, x, s, lp, cfg.init_select).reshape(n_c, n_k),
                        pooled=cfg.init_select == "laplace")
    params = _flat_to_sites(cfg, x[pick])
    if gibbs:
        params["burst_on"] = s[pick]
    return params, lp[pick]


def _pick_starts(score, pooled: bool):
    """Flat candidate index (n_c,) of each chain's start from the scores (n_c, n_k): the chain's own best; with
    ``pooled``, a chain whose best scores more than ``LAPLACE_GAP_NATS`` below the best chain's (a minor local
    mode holding < e^-5 of the mass) takes instead the c-th best candidate of all chains."""
    n_c, n_k = score.shape
    pick = jnp.arange(n_c) * n_k + jnp.argmax(score, axis=1)
    if pooled:
        own = score.reshape(-1)[pick]
        ranked = jnp.argsort(-score.reshape(-1))[:n_c]
        pick = jnp.where(own < jnp.max(own) - LAPLACE_GAP_NATS, ranked, pick)
    return pick


def _start_scores(logp, x, s, lp, select: str):
    """Score of each candidate start (n,) from its log posterior ``lp`` (n,) at ``x`` (n, d) (discrete
    state ``s`` (n,)): ``lp`` itself (``'density'``) or the Laplace log mass ``lp - log det(-H) / 2``
    (``'laplace'``, :func:`_log_det_curvature`). Non-finite scores rank last."""
    score = lp
    if select == "laplace":
        score = lp - 0.5 * jax.vmap(lambda v, s0: _log_det_curvature(lambda y: logp(y, s0), v))(x, s)
    return jnp.where(jnp.isfinite(score), score, -jnp.inf)


def _log_det_curvature(logp, x, floor: float = 0.1):
    """log det(-H) of ``logp`` at ``x`` with the eigenvalues of -H floored at ``floor``: where ``x`` is not a
    maximum in some direction, that direction counts as broad (it holds mass), not as an error."""
    h = jax.hessian(logp)(x)
    eig = jnp.linalg.eigvalsh(-0.5 * (h + h.T))
    return jnp.sum(jnp.log(jnp.maximum(jnp.where(jnp.isfinite(eig), eig, floor), floor)))


def _kernel_and_mcmc(cfg: NUTSConfig, num_warmup: int):
    """numpyro kernel and ``MCMC`` object for ``cfg`` (built inside jit: style.md §2.3)."""
    from numpyro.infer import MCMC, NUTS, DiscreteHMCGibbs, init_to_median, init_to_uniform

    gibbs = cfg.sampler == "gibbs"
    jump = _jumps(cfg)
    strategy = init_to_median(num_samples=15) if cfg.init == "median" else init_to_uniform(radius=2)
    kernel = NUTS(
        _model_fn(cfg),
        dense_mass=cfg.dense_mass,
        target_accept_prob=cfg.target_accept_prob,
        max_tree_depth=cfg.max_tree_depth,
        init_strategy=strategy,
    )
    if gibbs:
        kernel = DiscreteHMCGibbs(kernel, modified=True)
    if jump:  # the burst coordinates of theta_rest: q (f_burst's slot) and w (t_burst's slot), both in (0, 1)
        kernel = JumpNUTS(kernel, "theta_rest", (F_BURST_INDEX - 1, T_BURST_INDEX - 1), jnp.zeros(2), jnp.ones(2),
                          n_try=cfg.jump_tries)
    return MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=cfg.num_samples,
        num_chains=cfg.num_chains,
        # numpyro's Gibbs kernels and JumpNUTS take one key: vectorise the chains with a callable chain method
        chain_method=jax.vmap if ((gibbs or jump) and cfg.chain_method == "vectorized") else cfg.chain_method,
        progress_bar=False,
    )


def _jumps(cfg: NUTSConfig) -> bool:
    return cfg.jump_tries > 0  # NUTSConfig allows it with the collapsed sampler only


def _fields(cfg: NUTSConfig) -> tuple[str, tuple[str, ...]]:
    prefix = "hmc_state." if (cfg.sampler == "gibbs" or _jumps(cfg)) else ""
    own = ("jumped",) if _jumps(cfg) else ()
    return prefix, tuple(prefix + f for f in ("diverging", "num_steps", "accept_prob", "potential_energy")) + own


def _collect(cfg: NUTSConfig, mcmc, key, flux_model, flux_obs, ivar, low, high) -> dict:
    """Per-chain draws of the sampling phase just run: theta_flow, burst_on, sampler statistics."""
    prefix, fields = _fields(cfg)
    ex = mcmc.get_extra_fields(group_by_chain=True)
    out = {f[len(prefix):] if f.startswith(prefix) else f: ex[f] for f in fields}
    if "jumped" not in out:
        out["jumped"] = jnp.zeros_like(out["diverging"])
    smp = mcmc.get_samples(group_by_chain=True)
    t_cut = burst_cut(flux_model, low, high)
    if cfg.sampler == "collapsed":
        rest = smp["theta_rest"]  # (chains, draws, 10)
        keys = jr.split(key, rest.shape[0] * rest.shape[1]).reshape(rest.shape[:2])
        draw = lambda k, r: draw_mass_and_burst(k, r, flux_model, flux_obs, ivar, low, high, cfg.joint_off, cfg.joint_on)  # noqa: E731
        out["theta_flow"], out["burst_on"] = jax.vmap(jax.vmap(draw))(keys, rest)
    elif cfg.sampler == "gibbs":
        out["theta_flow"] = smp["theta_flow"]  # deterministic site: t_burst (and mass) mapped back
        out["burst_on"] = smp["burst_on"].astype(jnp.int32)
    else:
        out["theta_flow"] = smp["theta_flow"]
        out["burst_on"] = (smp["theta_flow"][..., T_BURST_INDEX] < t_cut).astype(jnp.int32)
    out["t_cut"] = t_cut
    out["state"] = mcmc.last_state
    return out


def make_run_one(cfg: NUTSConfig):
    """``run_one(key, flux_model, flux_obs, ivar, low, high, init=None) -> dict`` of per-chain arrays.

    ``init``: ``(params, log_post)`` of :func:`make_init` for these chains (the chain-split ``pmap``
    searches once for all of a galaxy's chains, so the starts are chosen among all candidates); None:
    searched here (``init='optimize'``) or numpyro's strategy.

    Pure and jittable (``MCMC`` is built inside). Outputs: ``theta_flow`` (chains, draws, 11) (for
    the collapsed and Gibbs samplers with log10 M* and t_burst mapped back), ``burst_on`` (chains,
    draws) (the burst state s; for ``sampler='nuts'`` the indicator t_burst < t_cut),
    ``diverging``, ``num_steps``, ``accept_prob``, ``potential_energy`` (chains, draws),
    ``warmup_num_steps`` (chains,) and ``init_log_post`` (chains,) (NaN unless
    ``init='optimize'``), ``t_cut`` (), and ``state``, the sampler state after the last draw (to
    continue sampling with :func:`make_extend`).
    """
    prefix, fields = _fields(cfg)

    def run_one(key, flux_model, flux_obs, ivar, low, high, init=None):
        k_init, k_mcmc = jr.split(key)
        kwargs = dict(flux_model=flux_model, flux_obs_nmgy=flux_obs, ivar=ivar, low=low, high=high)
        init_params = None
        init_lp = jnp.full((cfg.num_chains,), jnp.nan, low.dtype)
        if init is not None:  # searched for all of the galaxy's chains together (make_init)
            init_params, init_lp = init
        elif cfg.init == "optimize":
            init_params, init_lp = _optimised_init(k_init, cfg, kwargs)
        if init_params is not None and cfg.num_chains == 1:
            init_params = jax.tree.map(lambda a: a[0], init_params)
        mcmc = _kernel_and_mcmc(cfg, cfg.num_warmup)
        mcmc.warmup(k_mcmc, init_params=init_params, extra_fields=(prefix + "num_steps",), collect_warmup=True, **kwargs)
        warm_steps = jnp.sum(mcmc.get_extra_fields(group_by_chain=True)[prefix + "num_steps"], axis=1)
        mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=fields, **kwargs)
        out = _collect(cfg, mcmc, jr.fold_in(k_mcmc, 1), flux_model, flux_obs, ivar, low, high)
        out["warmup_num_steps"] = warm_steps
        out["init_log_post"] = init_lp
        return out

    return run_one


def make_init(cfg: NUTSConfig):
    """``init(key, flux_model, flux_obs, ivar, low, high) -> (params, log_post)``: the ``'optimize'``
    starts of all ``cfg.num_chains`` chains, from the same key half that :func:`make_run_one` uses."""

    def init(key, flux_model, flux_obs, ivar, low, high):
        kwargs = dict(flux_model=flux_model, flux_obs_nmgy=flux_obs, ivar=ivar, low=low, high=high)
        return _optimised_init(jr.split(key)[0], cfg, kwargs)

    return init


def make_extend(cfg: NUTSConfig):
    """``extend(key, state, flux_model, flux_obs, ivar, low, high) -> dict``: ``cfg.num_samples``
    more draws per chain from ``state`` (adapted step size and mass matrix kept; no warm-up).

    Same outputs as :func:`make_run_one` except ``warmup_num_steps`` and ``init_log_post``.
    """
    _, fields = _fields(cfg)

    def extend(key, state, flux_model, flux_obs, ivar, low, high):
        kwargs = dict(flux_model=flux_model, flux_obs_nmgy=flux_obs, ivar=ivar, low=low, high=high)
        k_run, k_post = jr.split(key)
        mcmc = _kernel_and_mcmc(cfg, 1)
        mcmc.post_warmup_state = state
        mcmc.run(k_run, extra_fields=fields, **kwargs)
        return _collect(cfg, mcmc, k_post, flux_model, flux_obs, ivar, low, high)

    return extend


_RUN_CACHE: dict = {}


def _merged(out: dict) -> dict:
    """(devices, chains per device, ...) outputs of a chain-split ``pmap`` -> (chains, ...); the state stays split."""
    return {k: (v if k == "state" else v[0] if k == "t_cut" else v.reshape((-1,) + v.shape[2:])) for k, v in out.items()}


def _merge_devices(pmapped, n_dev: int):
    """Wrap a chain-split ``pmap`` of extend: one key per device in, chains merged out."""

    def fn(key, *args):
        return _merged(pmapped(jr.split(key, n_dev), *args))

    return fn


def _per_device(cfg: NUTSConfig, n_dev: int) -> NUTSConfig:
    """The config each of ``n_dev`` devices runs: its share of the chains."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # num_chains may drop below 2 per device
        return dataclasses.replace(cfg, num_chains=cfg.num_chains // n_dev)


def _split_run(cfg: NUTSConfig, n_dev: int):
    """run_one with a galaxy's chains split over ``n_dev`` devices. The ``'optimize'`` starts are searched
    once for all chains (one device, :func:`make_init`) and then sharded, so every chain picks among all
    candidates (``init_select='laplace'`` replaces a chain's start by one of the others')."""
    sub = _per_device(cfg, n_dev)
    devices = jax.local_devices()[:n_dev]
    if cfg.init != "optimize":
        return _merge_devices(jax.pmap(make_run_one(sub), in_axes=(0, None, None, None, None, None), devices=devices),
                              n_dev)
    init_fn = jax.jit(make_init(cfg))
    pmapped = jax.pmap(make_run_one(sub), in_axes=(0, None, None, None, None, None, 0), devices=devices)

    def fn(key, *args):
        init = jax.tree.map(lambda a: a.reshape((n_dev, -1) + a.shape[1:]), init_fn(key, *args))
        return _merged(pmapped(jr.split(key, n_dev), *args, init))

    return fn


def _chain_devices(cfg: NUTSConfig) -> int:
    """Number of local devices one galaxy's chains are spread over (1: all on one device): the most, up to one
    device per chain, that divides the chain count (4 chains: 4 devices of 8, 2 of 2 or 3)."""
    if cfg.chain_method != "vectorized":
        return 1
    n_dev = min(jax.local_device_count(), cfg.num_chains)
    return max(d for d in range(1, n_dev + 1) if cfg.num_chains % d == 0)


def _compiled(cfg: NUTSConfig, kind: str = "jit"):
    """One compiled runner per (config, kind), cached across calls (compiles once per shape)."""
    # the convergence criteria and the extension count act on the host: not part of the compile
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key = (dataclasses.replace(cfg, rhat_max=1.01, ess_min=400.0, max_divergence_fraction=0.01, max_extensions=0),
               kind)
    if key not in _RUN_CACHE:
        run_one = make_run_one(cfg)
        if kind == "jit":
            fn = jax.jit(run_one)
        elif kind == "vmap":
            fn = jax.jit(jax.vmap(run_one, in_axes=(0, 0, 0, 0, None, None)))
        elif kind == "extend":
            fn = jax.jit(make_extend(cfg))
        elif kind in ("chains_pmap", "extend_pmap"):  # one galaxy's chains spread over the devices
            n_dev = _chain_devices(cfg)
            if kind == "chains_pmap":
                fn = _split_run(cfg, n_dev)
            else:
                fn = _merge_devices(jax.pmap(make_extend(_per_device(cfg, n_dev)), in_axes=(0, 0, None, None, None, None, None),
                                             devices=jax.local_devices()[:n_dev]), n_dev)
        elif kind == "pmap":
            fn = jax.pmap(run_one, in_axes=(0, 0, 0, 0, None, None))
        else:  # pragma: no cover
            raise ValueError(kind)
        _RUN_CACHE[key] = fn
    return _RUN_CACHE[key]


# ----------------------------------------------------------------------------- host side
def _check_key(key):
    if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
        raise TypeError("New-style typed JAX PRNG keys required (jax.random.key(seed)).")


def _default_model(redshift_max: float, filters="sdss2010-ugriz"):
    from ..model import ProvabgsModel

    return ProvabgsModel.build(filters=filters, z_max=max(0.2, float(redshift_max)))


def fixed_redshift_models(model, redshift) -> list:
    """One :class:`~sedflow_jax.model.fixed_redshift.FixedRedshiftModel` per redshift (same shapes)."""
    from ..model.fixed_redshift import FixedRedshiftModel

    return [FixedRedshiftModel.from_model(model, float(z)) for z in np.atleast_1d(redshift)]


def _binary_rhat_ess(s: np.ndarray) -> tuple[float, float]:
    """Split R-hat and bulk ESS of a 0/1 chain array (chains, draws), on the mean (not ranks).

    All draws equal (every chain on one side of the burst cut): R-hat 1 and ESS = the number of
    draws (nothing to mix; the other side has negligible posterior mass as far as the run sees).
    """
    import arviz as az

    s = np.asarray(s, np.float64)
    if np.all(s == s.flat[0]):
        return 1.0, float(s.size)
    return float(az.rhat(s, method="split")), float(az.ess(s, method="mean"))


def diagnose(theta_flow: np.ndarray, diverging: np.ndarray, cfg: NUTSConfig, burst_on: np.ndarray | None = None) -> dict:
    """Split R-hat (rank-normalised), bulk and tail ESS per parameter, divergences, verdict.

    Computed on both the 11 sampled flow coordinates and the 12 physical parameters; the criteria
    apply to all 23 (beta_k are not monotone in single flow coordinates). ``burst_on`` (the Gibbs
    indicator s, optional) adds the row ``burst:on`` with the classic split R-hat and ESS of the
    mean of s (rank statistics and tail ESS are meaningless for a binary variable; its tail entry
    repeats the mean ESS). It is reported but not a criterion: s is a function of t_burst
    (t_burst < t_cut), whose rank-normalised R-hat and ESS already measure the mixing between the
    burst-on and burst-off pieces.
    """
    import arviz as az

    theta = np.asarray(flow_to_physical(jnp.asarray(theta_flow, jnp.float64 if jax.config.jax_enable_x64 else None)))
    out: dict[str, Any] = {}
    rows = {}
    for group, arr, names in (("flow", theta_flow, FLOW_NAMES), ("theta", theta, THETA_NAMES)):
        arr = np.asarray(arr, np.float64)
        # a chain stuck at a constant value has undefined R-hat (NaN): count it as failed
        rhat = np.array([float(az.rhat(arr[..., j], method="rank")) for j in range(arr.shape[-1])])
        ess_b = np.array([float(az.ess(arr[..., j], method="bulk")) for j in range(arr.shape[-1])])
        ess_t = np.array([float(az.ess(arr[..., j], method="tail")) for j in range(arr.shape[-1])])
        for j, n in enumerate(names):
            rows[f"{group}:{n}"] = {"rhat": rhat[j], "ess_bulk": ess_b[j], "ess_tail": ess_t[j]}
    if burst_on is not None:
        r, e = _binary_rhat_ess(burst_on)
        rows["burst:on"] = {"rhat": r, "ess_bulk": e, "ess_tail": e, "mean": float(np.mean(burst_on))}
    # criteria over the parameters; burst:on is reported only (it is a function of t_burst, whose
    # rank-based R-hat and ESS already measure the mixing between the two pieces)
    crit = {k: r for k, r in rows.items() if k != "burst:on"}
    rhat_all = np.array([r["rhat"] for r in crit.values()])
    essb = np.array([r["ess_bulk"] for r in crit.values()])
    esst = np.array([r["ess_tail"] for r in crit.values()])
    n_div = int(np.sum(diverging))
    nan_to = lambda a, v: np.where(np.isfinite(a), a, v)  # noqa: E731
    out["max_rhat"] = float(np.max(nan_to(rhat_all, np.inf)))
    out["min_ess_bulk"] = float(np.min(nan_to(essb, 0.0)))
    out["min_ess_tail"] = float(np.min(nan_to(esst, 0.0)))
    out["n_divergent"] = n_div
    reasons = []
    if not out["max_rhat"] < cfg.rhat_max:
        worst = max(crit, key=lambda k: nan_to(np.array(crit[k]["rhat"]), np.inf))
        reasons.append(f"R-hat {out['max_rhat']:.4f} >= {cfg.rhat_max} ({worst})")
    if not out["min_ess_bulk"] >= cfg.ess_min:
        worst = min(crit, key=lambda k: nan_to(np.array(crit[k]["ess_bulk"]), 0.0))
        reasons.append(f"bulk ESS {out['min_ess_bulk']:.0f} < {cfg.ess_min:.0f} ({worst})")
    if not out["min_ess_tail"] >= cfg.ess_min:
        worst = min(crit, key=lambda k: nan_to(np.array(crit[k]["ess_tail"]), 0.0))
        reasons.append(f"tail ESS {out['min_ess_tail']:.0f} < {cfg.ess_min:.0f} ({worst})")
    n_trans = int(np.size(diverging))
    out["divergent_fraction"] = n_div / max(n_trans, 1)
    if out["divergent_fraction"] > cfg.max_divergence_fraction:
        reasons.append(f"{n_div} divergent transitions ({100 * out['divergent_fraction']:.2f}% of {n_trans}) "
                       f"> {100 * cfg.max_divergence_fraction:g}%")
    out["rhat_ok"] = bool(out["max_rhat"] < cfg.rhat_max)
    out["ess_ok"] = bool(out["min_ess_bulk"] >= cfg.ess_min and out["min_ess_tail"] >= cfg.ess_min)
    out["converged"] = not reasons
    out["reasons"] = reasons
    out["per_parameter"] = rows
    return out


def _to_idata(raw: dict, diag: dict, cfg: NUTSConfig, *, flux_obs, ivar, redshift, galaxy_id, filters, wall_s, truth=None):
    import arviz as az

    theta_flow = np.asarray(raw["theta_flow"])
    theta = np.asarray(flow_to_physical(jnp.asarray(theta_flow)))
    n_chain, n_draw = theta_flow.shape[:2]
    posterior = {"theta_flow": theta_flow, "theta": theta, "burst_on": np.asarray(raw["burst_on"])}
    sample_stats = {
        "diverging": np.asarray(raw["diverging"]),
        "n_steps": np.asarray(raw["num_steps"]),
        "acceptance_rate": np.asarray(raw["accept_prob"]),
        "lp": -np.asarray(raw["potential_energy"]),
    }
    attrs = {
        "galaxy_id": str(galaxy_id),
        "redshift": float(redshift),
        "converged": int(diag["converged"]),
        "convergence_failures": "; ".join(diag["reasons"]),
        "max_rhat": diag["max_rhat"],
        "min_ess_bulk": diag["min_ess_bulk"],
        "min_ess_tail": diag["min_ess_tail"],
        "n_divergent": diag["n_divergent"],
        "n_gradient_evals": int(diag["n_gradient_evals"]),
        "n_gradient_evals_total": int(diag["n_gradient_evals_total"]),
        "t_cut_gyr": float(raw["t_cut"]),
        "p_burst_on": float(np.mean(raw["burst_on"])),
        "burst_flip_rate": float(diag["burst_flip_rate"]),
        "jump_rate": float(diag["jump_rate"]),
        "wall_s": float(wall_s),
        "nuts_config": str(dataclasses.asdict(cfg)),
        "likelihood": "Gaussian in flux (nanomaggies), sigma = ivar^-1/2, bands with ivar = 0 dropped",
        "prior": "SEDflow box, uniform in flow space (theta_flow)",
        "sampler": _sampler_text(cfg),
    }
    if truth is not None:
        attrs["theta_true"] = np.asarray(truth, np.float64).tolist()
    coords = {"flow_param": list(FLOW_NAMES), "param": list(THETA_NAMES), "band": list(filters)}
    dims = {"theta_flow": ["flow_param"], "theta": ["param"], "flux_obs_nmgy": ["band"], "ivar": ["band"]}
    return az.from_dict(
        posterior=posterior,
        sample_stats=sample_stats,
        observed_data={"flux_obs_nmgy": np.asarray(flux_obs), "ivar": np.asarray(ivar)},
        coords=coords,
        dims=dims,
        attrs=attrs,
    )


def _sampler_text(cfg: NUTSConfig) -> str:
    if cfg.sampler == "gibbs":
        return ("numpyro DiscreteHMCGibbs(NUTS, modified=True) on burst_split_model (t_burst split at t_cut_gyr"
                + (", mass as offset from its profile maximum)" if cfg.profile_mass else ")"))
    if cfg.sampler == "collapsed":
        jump = f" + multiple-try jumps of the burst coordinates ({cfg.jump_tries} tries)" if cfg.jump_tries else ""
        off = {(True, True): ", f_burst too", (True, False): ", f_burst too in the burst-off state",
               (False, True): ", f_burst too in the burst-on state", (False, False): ""}[(cfg.joint_off, cfg.joint_on)]
        return f"numpyro NUTS{jump} on collapsed_model (log10 M*{off} and the burst state drawn back per draw)"
    return "numpyro NUTS on photometry_model"


_DRAW_KEYS = ("theta_flow", "burst_on", "diverging", "num_steps", "accept_prob", "potential_energy", "jumped")


def _extend_until_converged(cfg: NUTSConfig, raw: dict, key, flux_model, flux_obs, ivar, low, high,
                            split: bool = False) -> dict:
    """Continue the chains in blocks of ``num_samples`` while R-hat or ESS fail (``max_extensions``).

    ``split``: ``raw`` came from the chain-split ``pmap`` (state stacked per device).
    """
    raw = dict(raw)
    raw["n_blocks"] = 1
    for b in range(cfg.max_extensions):
        d = diagnose(np.asarray(raw["theta_flow"]), np.asarray(raw["diverging"]), cfg,
                     np.asarray(raw["burst_on"]) if cfg.sampler != "nuts" else None)
        if d["rhat_ok"] and d["ess_ok"]:
            raw["diag"] = d  # of the final draws: _finish need not compute it again
            break
        kind = "extend_pmap" if split else "extend"
        more = _compiled(cfg, kind)(jr.fold_in(key, 1_000_003 + b), raw["state"], flux_model, flux_obs, ivar, low, high)
        for k in _DRAW_KEYS:
            raw[k] = jnp.concatenate([raw[k], more[k]], axis=1)
        raw["state"] = more["state"]
        raw["n_blocks"] += 1
    return raw


def _finish(raw, cfg, *, flux_obs, ivar, redshift, galaxy_id, filters, wall_s, require_converged, truth=None):
    diag = raw.get("diag")
    raw = {k: np.asarray(v) for k, v in raw.items() if k not in ("state", "diag")}
    if diag is None:
        diag = diagnose(raw["theta_flow"], raw["diverging"], cfg, raw["burst_on"] if cfg.sampler != "nuts" else None)
    diag["n_gradient_evals"] = int(np.sum(raw["num_steps"]))  # sampling phase only
    n_init = cfg.num_chains * (cfg.init_keep * cfg.init_steps + cfg.init_draws) if cfg.init == "optimize" else 0
    # all phases (init search + warm-up + sampling), all chains; Gibbs flips add <= 2 per iteration
    diag["n_gradient_evals_total"] = int(np.sum(raw["num_steps"]) + np.sum(raw["warmup_num_steps"]) + n_init)
    diag["t_cut_gyr"] = float(raw["t_cut"])
    diag["p_burst_on"] = float(np.mean(raw["burst_on"]))
    b = np.asarray(raw["burst_on"])
    diag["burst_flip_rate"] = float(np.mean(b[:, 1:] != b[:, :-1])) if b.shape[1] > 1 else 0.0
    diag["jump_rate"] = float(np.mean(raw["jumped"]))  # accepted burst jumps per iteration (JumpNUTS)
    diag["wall_s"] = float(wall_s)
    diag["n_blocks"] = int(raw.get("n_blocks", 1))
    diag["n_draws_per_chain"] = int(raw["theta_flow"].shape[1])
    idata = _to_idata(raw, diag, cfg, flux_obs=flux_obs, ivar=ivar, redshift=redshift, galaxy_id=galaxy_id,
                      filters=filters, wall_s=wall_s, truth=truth)
    res = NUTSResult(idata=idata, diagnostics=diag, converged=diag["converged"])
    if not res.converged:
        msg = f"galaxy {galaxy_id}: NUTS did not converge: " + "; ".join(diag["reasons"])
        if require_converged:
            raise NotConvergedError(msg)
        warnings.warn(msg, NotConvergedWarning, stacklevel=3)
    return res


def _prepare(flux_obs, ivar, redshift, model, prior, cfg: NUTSConfig):
    from ..priors.sedflow import sedflow_prior

    z = np.atleast_1d(np.asarray(redshift, np.float64))
    if model is None:
        if not np.all(np.isfinite(z)):
            raise ValueError("redshift must be finite")
        model = _default_model(float(np.max(z)))
    f, w = check_photometry(flux_obs, ivar, model.n_band)
    if f.ndim == 1:
        f, w = f[None], w[None]
    if z.shape != (f.shape[0],):
        raise ValueError(f"redshift must have shape ({f.shape[0]},) to match the fluxes, got {z.shape}")
    bad = ~np.isfinite(z) | (z < 0) | (z > model.z_max)
    if bad.any():
        raise ValueError(f"redshift outside [0, {model.z_max}] (the model's z_max) in row(s) {np.flatnonzero(bad)[:10].tolist()}")
    prior = sedflow_prior(dtype=model.dtype) if prior is None else prior
    k = F_BURST_INDEX
    if (cfg.sampler == "collapsed" and (cfg.joint_off or cfg.joint_on)
            and (float(prior.low[k]), float(prior.high[k])) != (0.0, 1.0)):
        raise ValueError(f"NUTSConfig(joint_off / joint_on) needs the f_burst prior box [0, 1], got "
                         f"[{float(prior.low[k])}, {float(prior.high[k])}]; set both False")
    return f, w, z, model, prior


def run_nuts(
    key,
    flux_obs_nmgy,
    ivar,
    redshift: float,
    *,
    model=None,
    prior=None,
    config: NUTSConfig | None = None,
    galaxy_id="0",
    truth=None,
    require_converged: bool = False,
) -> NUTSResult:
    """NUTS posterior of one galaxy's 12 SED parameters given its photometry.

    Args:
        key: typed PRNG key (``jax.random.key(seed)``).
        flux_obs_nmgy: ``(n_band,)`` observed fluxes in nanomaggies.
        ivar: ``(n_band,)`` inverse variances (nmgy^-2); 0 drops a band.
        redshift: the galaxy's (spectroscopic) redshift, held fixed.
        model: a :class:`~sedflow_jax.model.ProvabgsModel` (default: BC03, SDSS ugriz, z_max >= z).
        prior: :class:`~sedflow_jax.priors.SEDflowPrior` (default: SEDflow's box).
        config: :class:`NUTSConfig`.
        galaxy_id: label stored with the result.
        truth: optional true 12-D theta, stored in the attributes (simulations).
        require_converged: raise :class:`NotConvergedError` instead of warning.

    Returns:
        :class:`NUTSResult`; ``result.converged`` is False (and a :class:`NotConvergedWarning` is
        issued) when any criterion of ``config`` fails.
    """
    _check_key(key)
    cfg = config or NUTSConfig()
    f, w, z, model, prior = _prepare(flux_obs_nmgy, ivar, redshift, model, prior, cfg)
    if f.shape[0] != 1:
        raise ValueError("run_nuts fits one galaxy; use run_nuts_batch for several")
    fm = fixed_redshift_models(model, z)[0]
    dt = model.dtype
    t0 = time.perf_counter()
    fa, wa = jnp.asarray(f[0], dt), jnp.asarray(w[0], dt)
    raw = _compiled(cfg, "chains_pmap" if _chain_devices(cfg) > 1 else "jit")(key, fm, fa, wa, prior.low, prior.high)
    raw = _extend_until_converged(cfg, raw, key, fm, fa, wa, prior.low, prior.high, split=_chain_devices(cfg) > 1)
    raw = jax.block_until_ready(raw)
    wall = time.perf_counter() - t0
    return _finish(raw, cfg, flux_obs=f[0], ivar=w[0], redshift=z[0], galaxy_id=galaxy_id,
                   filters=model.filters.names, wall_s=wall, require_converged=require_converged, truth=truth)


def run_nuts_batch(
    key,
    flux_obs_nmgy,
    ivar,
    redshift,
    *,
    model=None,
    prior=None,
    config: NUTSConfig | None = None,
    galaxy_ids=None,
    truth=None,
    strategy: str = "loop",
    batch_size: int = 4,
    require_converged: bool = False,
    progress: bool = True,
) -> Iterator[tuple[int, NUTSResult]]:
    """NUTS for many galaxies; yields ``(row, NUTSResult)`` in row order.

    Galaxy ``i`` uses ``jax.random.fold_in(key, i)``, so results do not depend on the strategy's
    grouping. Strategies: ``'loop'`` (one ``jax.jit(run_one)`` compile reused for every galaxy;
    with several local devices, galaxies are spread over them with ``pmap``, ``n_device`` at a
    time) or ``'vmap'`` (``jit(vmap(run_one))`` over ``batch_size`` galaxies; a vmapped NUTS
    advances at the pace of the slowest trajectory, see ``docs/nuts.md`` for timings).
    Non-converged galaxies are yielded with ``converged=False`` and a warning.
    """
    _check_key(key)
    if strategy not in ("loop", "vmap"):
        raise ValueError(f"strategy must be 'loop' or 'vmap', got {strategy!r}")
    cfg = config or NUTSConfig()
    f, w, z, model, prior = _prepare(flux_obs_nmgy, ivar, redshift, model, prior, cfg)
    n = f.shape[0]
    ids = [str(i) for i in range(n)] if galaxy_ids is None else [str(g) for g in galaxy_ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} galaxy_ids for {n} galaxies")
    truth = None if truth is None else np.asarray(truth)
    dt = model.dtype
    n_dev = jax.local_device_count()
    split = _chain_devices(cfg) > 1
    group = batch_size if strategy == "vmap" else (n_dev if (n_dev > 1 and not split) else 1)
    kind = "vmap" if strategy == "vmap" else ("chains_pmap" if split else "pmap" if n_dev > 1 else "jit")

    from tqdm.auto import tqdm

    bar = tqdm(total=n, desc="NUTS", unit="gal", disable=not progress)
    try:
        for start in range(0, n, group):
            rows = list(range(start, min(start + group, n)))
            pad = rows + [rows[-1]] * (group - len(rows))  # fixed shape: pad with the last row
            fms = fixed_redshift_models(model, z[pad])
            keys = jnp.stack([jr.fold_in(key, i) for i in pad])
            fa, wa = jnp.asarray(f[pad], dt), jnp.asarray(w[pad], dt)
            t0 = time.perf_counter()
            if kind in ("jit", "chains_pmap"):
                raws = [_compiled(cfg, kind)(keys[0], fms[0], fa[0], wa[0], prior.low, prior.high)]
            else:
                stacked = jax.tree.map(lambda *a: jnp.stack(a), *fms)
                out = _compiled(cfg, kind)(keys, stacked, fa, wa, prior.low, prior.high)
                raws = [jax.tree.map(lambda a, j=j: a[j], out) for j in range(len(pad))]
            raws = jax.block_until_ready(raws)
            wall0 = (time.perf_counter() - t0) / len(rows)
            for j, i in enumerate(rows):
                t1 = time.perf_counter()
                raw = jax.block_until_ready(
                    _extend_until_converged(cfg, raws[j], keys[j], fms[j], fa[j], wa[j], prior.low, prior.high,
                                            split=kind == "chains_pmap"))
                wall = wall0 + time.perf_counter() - t1
                res = _finish(raw, cfg, flux_obs=f[i], ivar=w[i], redshift=z[i], galaxy_id=ids[i],
                              filters=model.filters.names, wall_s=wall, require_converged=require_converged,
                              truth=None if truth is None else truth[i])
                bar.update(1)
                bar.set_postfix(converged=res.converged, s=f"{wall:.1f}")
                yield i, res
    finally:
        bar.close()
