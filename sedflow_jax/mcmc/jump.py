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

:class:`JumpNUTS` wraps a configured numpyro kernel (composition; the NUTS kernel is not
subclassed). It runs one chain per state: vectorise chains with ``chain_method=jax.vmap``.
"""

from __future__ import annotations

from collections import namedtuple

import jax
import jax.numpy as jnp
import jax.random as jr
from numpyro.infer.mcmc import MCMCKernel

__all__ = ["JumpNUTS", "JumpState"]

#: ``z``: unconstrained sample (as NUTS's); ``hmc_state``: the inner kernel's state; ``jumped``:
#: whether this iteration's jump was accepted; ``rng_key``: as numpyro's MCMC expects.
JumpState = namedtuple("JumpState", ["z", "hmc_state", "jumped", "rng_key"])

_P_EDGE = 1e-6  # proposals stay this far inside the box (logit of an edge value is infinite)


class JumpNUTS(MCMCKernel):
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
        if int(n_try) < 1:
            raise ValueError(f"n_try must be >= 1, got {n_try}")
        self.inner = inner
        self.site = site
        self.index = tuple(int(i) for i in index)
        # arrays, not floats: the kernel may be built inside a jit trace with a traced prior box
        self.low, self.high = jnp.atleast_1d(low), jnp.atleast_1d(high)
        if self.low.shape != (len(self.index),) or self.high.shape != (len(self.index),):
            raise ValueError("low and high need one value per moved component")
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
            raise ValueError("JumpNUTS runs one chain per state: use chain_method=jax.vmap for several")
        k_inner, k_own = jr.split(rng_key)
        hmc_state = self.inner.init(k_inner, num_warmup, init_params, model_args, model_kwargs)
        return JumpState(hmc_state.z, hmc_state, jnp.zeros((), bool), k_own)

    def sample(self, state, model_args, model_kwargs):
        hmc_state = self.inner.sample(state.hmc_state, model_args, model_kwargs)
        key, k_prop, k_pick, k_acc = jr.split(state.rng_key, 4)
        potential = self.inner.get_potential_fn(model_args, model_kwargs)
        z = hmc_state.z
        x = z[self.site]
        idx = jnp.asarray(self.index)
        width = jnp.asarray(self.high - self.low, x.dtype)

        def log_jac(block):  # log |d constrained / d unconstrained| of affine o sigmoid, summed
            return jnp.sum(jnp.log(width) + jax.nn.log_sigmoid(block) + jax.nn.log_sigmoid(-block), axis=-1)

        p = jr.uniform(k_prop, (self.n_try, len(self.index)), x.dtype, _P_EDGE, 1 - _P_EDGE)
        y_block = jnp.log(p) - jnp.log1p(-p)
        cand = jnp.broadcast_to(x, (self.n_try,) + x.shape).at[:, idx].set(y_block)

        def neg_u(v):
            return -potential({**z, self.site: v})

        # densities in the box coordinates, where the proposal is uniform
        lw = jax.vmap(neg_u)(cand) - log_jac(y_block)
        lw = jnp.where(jnp.isfinite(lw), lw, -jnp.inf)
        lw_x = -hmc_state.potential_energy - log_jac(x[idx])
        j = jr.categorical(k_pick, lw)
        log_alpha = jax.nn.logsumexp(lw) - jax.nn.logsumexp(lw.at[j].set(lw_x))
        accept = jnp.log(jr.uniform(k_acc, (), x.dtype)) < log_alpha
        x_new = jnp.where(accept, cand[j], x)
        z_new = {**z, self.site: x_new}
        pe, grad = jax.value_and_grad(potential)(z_new)
        hmc_state = hmc_state._replace(
            z=z_new,
            z_grad=jax.tree.map(lambda g, g0: jnp.where(accept, g, g0), grad, hmc_state.z_grad),
            potential_energy=jnp.where(accept, pe, hmc_state.potential_energy),
        )
        return JumpState(z_new, hmc_state, accept, key)
