"""NUTS with independent multiple-try Metropolis jumps on a block of coordinates.

In the collapsed posterior (:func:`~sedflow_jax.mcmc.model.collapsed_model`) the burst coordinates
(w: log age of the burst, q: its light fraction) see a narrow peak where a burst fits the data on
top of a broad plateau where the burst is faint or off and (w, q) follow the prior. NUTS moves
between the two only through faint-burst configurations, so t_burst was the worst-mixing parameter
of most galaxies whose R-hat or ESS failed (``docs/nuts.md``). A global move fixes that: after
every NUTS transition, ``n_try`` values of the block are drawn uniformly from its prior box, one is
picked in proportion to its posterior density, and it is accepted with the multiple-try Metropolis
probability for independent proposals (Liu, Liang & Wong 2000, JASA 95, 121):

    alpha = min(1, sum_k w(y_k) / (sum_k w(y_k) - w(y_j) + w(x))),  w = posterior density in the box.

Each move leaves the posterior invariant, so the composite kernel samples it exactly; a peak that
fills a fraction V of the block's box is hit about ``n_try * V`` times per iteration, whatever the
barrier between it and the chain's current position. The cost is ``n_try`` density evaluations
(no gradients) per iteration, small beside a NUTS trajectory.

:class:`MixtureJumpNUTS` (``NUTSConfig(mode_jumps=N)``) makes the same move on all sampled coordinates at
once, with proposals from a Student-t mixture fitted after warm-up to every chain's warm-up draws
(:func:`fit_t_mixture`): where the chains of a galaxy settled in different modes (a young dusty burst in
one chain, an older burst in the others), each chain can jump into the modes the others found. The
importance weights are then w = posterior / mixture density, both in numpyro's unconstrained coordinates.

Both wrap a configured numpyro kernel (composition; the NUTS kernel is not subclassed). They run one
chain per state: vectorise chains with ``chain_method=jax.vmap``.
"""

from __future__ import annotations

from collections import namedtuple
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.random as jr
from numpyro.infer.mcmc import MCMCKernel

__all__ = ["JumpNUTS", "JumpState", "MixtureJumpNUTS", "TMixture", "fit_t_mixture", "wrap_state"]

#: ``z``: unconstrained sample (as NUTS's); ``hmc_state``: the inner kernel's state; ``jumped``:
#: whether this iteration's jump was accepted; ``rng_key``: as numpyro's MCMC expects.
JumpState = namedtuple("JumpState", ["z", "hmc_state", "jumped", "rng_key"])

_P_EDGE = 1e-6  # proposals stay this far inside the box (logit of an edge value is infinite)


class _IndependentJumps(MCMCKernel):
    """``inner`` (numpyro NUTS/HMC) followed by an independent multiple-try Metropolis jump.

    Subclasses say what is proposed: :meth:`_candidates` returns ``n_try`` candidate values of the
    site (unconstrained) and the log proposal density (up to a constant) there and at the current value.
    """

    site: str
    n_try: int

    def __init__(self, inner, site: str, n_try: int):
        if int(n_try) < 1:
            raise ValueError(f"n_try must be >= 1, got {n_try}")
        self.inner = inner
        self.site = site
        self.n_try = int(n_try)

    # -- numpyro kernel interface -----------------------------------------------------------------
    @property
    def model(self):
        return self.inner.model

    @property
    def sample_field(self):
        return "z"

    @property
    def default_fields(self):
        return ("z",)

    def postprocess_fn(self, model_args, model_kwargs):
        return self.inner.postprocess_fn(model_args, model_kwargs)

    def get_diagnostics_str(self, state):
        return self.inner.get_diagnostics_str(state.hmc_state)

    def init(self, rng_key, num_warmup, init_params, model_args, model_kwargs):
        typed = jnp.issubdtype(rng_key.dtype, jax.dtypes.prng_key)
        if jnp.ndim(rng_key) != (0 if typed else 1):
            raise ValueError(f"{type(self).__name__} runs one chain per state: use chain_method=jax.vmap for several")
        k_inner, k_own = jr.split(rng_key)
        hmc_state = self.inner.init(k_inner, num_warmup, init_params, model_args, model_kwargs)
        return wrap_state(hmc_state, k_own)

    def _candidates(self, key, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, state, model_args, model_kwargs):
        hmc_state = self.inner.sample(state.hmc_state, model_args, model_kwargs)
        key, k_prop, k_pick, k_acc = jr.split(state.rng_key, 4)
        potential = self.inner.get_potential_fn(model_args, model_kwargs)
        z = hmc_state.z
        x = z[self.site]
        cand, log_t_cand, log_t_x = self._candidates(k_prop, x)
        # importance weights pi / T of the candidates and of the current value (unconstrained space)
        lw = jax.vmap(lambda v: -potential({**z, self.site: v}))(cand) - log_t_cand
        lw = jnp.where(jnp.isfinite(lw), lw, -jnp.inf)
        lw_x = -hmc_state.potential_energy - log_t_x
        j = jr.categorical(k_pick, lw)
        log_alpha = jax.nn.logsumexp(lw) - jax.nn.logsumexp(lw.at[j].set(lw_x))
        accept = jnp.log(jr.uniform(k_acc, (), x.dtype)) < log_alpha
        z_new = {**z, self.site: jnp.where(accept, cand[j], x)}
        pe, grad = jax.value_and_grad(potential)(z_new)
        hmc_state = hmc_state._replace(
            z=z_new,
            z_grad=jax.tree.map(lambda g, g0: jnp.where(accept, g, g0), grad, hmc_state.z_grad),
            potential_energy=jnp.where(accept, pe, hmc_state.potential_energy),
        )
        return JumpState(z_new, hmc_state, accept, key)


def wrap_state(hmc_state, rng_key) -> JumpState:
    """A jump kernel's state around an inner NUTS state (e.g. one that plain NUTS warmed up), no jump yet."""
    return JumpState(hmc_state.z, hmc_state, jnp.zeros(jnp.shape(hmc_state.potential_energy), bool), rng_key)


class JumpNUTS(_IndependentJumps):
    """``inner`` (numpyro NUTS/HMC) followed by an independent multiple-try jump on ``site[index]``.

    Args:
        inner: a numpyro ``NUTS`` (or ``HMC``) kernel built from a model.
        site: name of the sample site whose components are moved; its support must be an interval
            (numpyro maps it with affine o sigmoid, which is assumed here).
        index: positions of the moved components in the site's (1-D) value.
        low, high: the interval of each moved component (the site's prior box there).
        n_try: proposals per iteration.
    """

    def __init__(self, inner, site: str, index, low, high, n_try: int = 16):
        super().__init__(inner, site, n_try)
        self.index = tuple(int(i) for i in index)
        # arrays, not floats: the kernel may be built inside a jit trace with a traced prior box
        self.low, self.high = jnp.atleast_1d(low), jnp.atleast_1d(high)
        if self.low.shape != (len(self.index),) or self.high.shape != (len(self.index),):
            raise ValueError("low and high need one value per moved component")

    def _candidates(self, key, x):
        idx = jnp.asarray(self.index)
        width = jnp.asarray(self.high - self.low, x.dtype)

        def log_jac(block):  # log |d constrained / d unconstrained| of affine o sigmoid, summed
            return jnp.sum(jnp.log(width) + jax.nn.log_sigmoid(block) + jax.nn.log_sigmoid(-block), axis=-1)

        # uniform in the box = density log_jac (+ const) in the unconstrained coordinates
        p = jr.uniform(key, (self.n_try, len(self.index)), x.dtype, _P_EDGE, 1 - _P_EDGE)
        y_block = jnp.log(p) - jnp.log1p(-p)
        cand = jnp.broadcast_to(x, (self.n_try,) + x.shape).at[:, idx].set(y_block)
        return cand, log_jac(y_block), log_jac(x[idx])


class MixtureJumpNUTS(_IndependentJumps):
    """``inner`` (numpyro NUTS/HMC) followed by an independent multiple-try jump of the whole ``site``
    (unconstrained, 1-D) with ``n_try`` draws from a fixed :class:`TMixture` ``proposal``.

    With the proposal fitted to the warm-up draws of all chains (:func:`fit_t_mixture`), a chain can
    jump into any mode another chain found, which NUTS alone cannot cross to. The proposal must stay
    fixed while draws are kept (fit it after warm-up) for the kernel to leave the posterior invariant.
    """

    def __init__(self, inner, site: str, proposal: "TMixture", n_try: int = 8):
        super().__init__(inner, site, n_try)
        self.proposal = proposal

    def _candidates(self, key, x):
        cand = self.proposal.sample(key, self.n_try).astype(x.dtype)
        return cand, self.proposal.log_prob(cand), self.proposal.log_prob(x)


class TMixture(NamedTuple):
    """Mixture of multivariate Student-t densities (a proposal with tails heavier than a Gaussian's).

    ``loc`` (K, d), ``chol`` (K, d, d) lower Cholesky factors of the scale matrices and ``inv_chol``
    their inverses, ``log_weight`` (K,) normalised, ``df`` () degrees of freedom (shared).
    """

    loc: jax.Array
    chol: jax.Array
    inv_chol: jax.Array
    log_weight: jax.Array
    df: jax.Array

    def sample(self, key, n: int) -> jax.Array:
        k_c, k_n, k_g = jr.split(key, 3)
        comp = jr.categorical(k_c, self.log_weight, shape=(n,))
        d = self.loc.shape[-1]
        eps = jr.normal(k_n, (n, d), self.loc.dtype)
        g = jr.gamma(k_g, 0.5 * self.df, (n,), self.loc.dtype) / (0.5 * self.df)  # chi2_df / df
        return self.loc[comp] + jnp.einsum("nij,nj->ni", self.chol[comp], eps) / jnp.sqrt(g)[:, None]

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Log density at ``x`` (..., d)."""
        d = self.loc.shape[-1]
        diff = x[..., None, :] - self.loc  # (..., K, d)
        sol = jnp.einsum("kij,...kj->...ki", self.inv_chol, diff)
        maha = jnp.sum(sol**2, axis=-1)
        log_det = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(self.chol, axis1=-2, axis2=-1))), axis=-1)
        nu = self.df
        log_c = (jax.scipy.special.gammaln(0.5 * (nu + d)) - jax.scipy.special.gammaln(0.5 * nu)
                 - 0.5 * d * jnp.log(nu * jnp.pi))
        comp = log_c - log_det - 0.5 * (nu + d) * jnp.log1p(maha / nu)
        return jax.nn.logsumexp(comp + self.log_weight, axis=-1)


def fit_t_mixture(draws, df: float = 4.0, scale: float = 1.2, floor: float = 0.05) -> TMixture:
    """A Student-t mixture with one component per chain, from the draws ``(chains, n, d)`` of several chains
    (unconstrained coordinates).

    Component k has chain k's mean, and its covariance times ``scale``^2 plus ``floor`` x the pooled covariance
    (so that a chain that barely moved still gives a usable width); equal weights. Chains that sit in different
    modes thus give a proposal that covers every mode any chain found. Pure JAX (runs inside the compiled
    sampler).
    """
    x = jnp.asarray(draws)
    if x.ndim != 3 or x.shape[1] < 2:
        raise ValueError(f"draws must have shape (chains, n >= 2, d), got {x.shape}")
    k, n, d = x.shape
    loc = x.mean(axis=1)
    dev = x - loc[:, None]
    cov = jnp.einsum("kni,knj->kij", dev, dev) / (n - 1)
    flat = x.reshape(-1, d)
    dev_all = flat - flat.mean(axis=0)
    pooled = dev_all.T @ dev_all / (k * n - 1)
    jitter = 1e-6 * jnp.maximum(jnp.trace(pooled) / d, 1e-12) * jnp.eye(d, dtype=x.dtype)
    chol = jnp.linalg.cholesky(scale**2 * cov + floor * pooled + jitter)
    eye = jnp.broadcast_to(jnp.eye(d, dtype=x.dtype), (k, d, d))
    inv_chol = jax.scipy.linalg.solve_triangular(chol, eye, lower=True)
    return TMixture(loc, chol, inv_chol, jnp.full((k,), -jnp.log(k), x.dtype), jnp.asarray(df, x.dtype))
