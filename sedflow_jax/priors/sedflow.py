"""The SEDflow prior: a box in the 11-D flow space and its bijection to the 12 model parameters.

Flow space (SEDflow's "thetas_unt"): [log M*, z1, z2, z3, f_burst, t_burst, log10 gamma1,
log10 gamma2, tau_BC, tau_ISM, n_dust], uniform in a box. The SFH weights come from z1..z3 by
uniform stick-breaking (so the induced beta prior is *not* a flat Dirichlet:
E[beta] = (1/2, 1/4, 1/8, 1/8)) and gamma = 10^(log10 gamma), i.e. log-uniform.

The density of the 12-D physical vector is taken on the 11-D manifold parametrised by
(log M*, beta1, beta2, beta3, f_b, t_b, gamma1, gamma2, tau_BC, tau_ISM, n) with beta4 = 1 - sum:
log p_phys = log p_box(u) - log|det d phys / d u| = log p_box(u) - log(z1^2 z2) - sum log(gamma ln 10).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray
from numpyro.distributions import constraints
from numpyro.distributions.transforms import Transform

from ..params import FLOW_NAMES, N_FLOW, N_THETA, THETA_NAMES

__all__ = [
    "SEDflowPrior",
    "sedflow_prior",
    "SEDFLOW_BOUNDS",
    "FlowToPhysical",
    "flow_to_physical",
    "physical_to_flow",
    "log_abs_det_jacobian",
    "BETA_SIMPLEX_ATOL",
]

#: The SFH weights beta1..beta4 lie on the simplex: |sum - 1| <= this (the one tolerance: prior density,
#: model input checks). float32 draws through flow_to_physical miss 1 by ~1e-7; 1e-4 also admits
#: parameters that went through float32 files and text, and rejects genuinely wrong inputs.
BETA_SIMPLEX_ATOL = 1e-4

LOG10_GAMMA_RANGE = (float(np.log10(4.5e-5)), float(np.log10(1.5e-2)))
_LOW = np.array([7.0, 0, 0, 0, 0, 0.01, LOG10_GAMMA_RANGE[0], LOG10_GAMMA_RANGE[0], 0, 0, -2.0])
_HIGH = np.array([12.5, 1, 1, 1, 1, 13.27, LOG10_GAMMA_RANGE[1], LOG10_GAMMA_RANGE[1], 3, 3, 1.0])
_Z1_FLOOR = 1e-8  # PROVABGS's emulator clips z1 = max(1 - beta1, 1e-8) when inverting


def flow_to_physical(u: Float[Array, "... 11"]) -> Float[Array, "... 12"]:
    """Map flow-space vectors to the 12 physical parameters (stick-breaking, 10^log10 gamma)."""
    z1, z2, z3 = u[..., 1], u[..., 2], u[..., 3]
    beta = jnp.stack([1 - z1, z1 * (1 - z2), z1 * z2 * (1 - z3), z1 * z2 * z3], axis=-1)
    gamma = 10.0 ** u[..., 6:8]
    return jnp.concatenate([u[..., :1], beta, u[..., 4:6], gamma, u[..., 8:]], axis=-1)


def physical_to_flow(theta: Float[Array, "... 12"]) -> Float[Array, "... 11"]:
    """Inverse of :func:`flow_to_physical`.

    Written with sums of the remaining sticks (z1 = b2+b3+b4, z1 z2 = b3+b4) rather than
    1 - b1 etc., which cancels catastrophically in float32 when a stick is nearly empty.
    """
    b2, b3, b4 = theta[..., 2], theta[..., 3], theta[..., 4]
    tail3 = b3 + b4
    z1 = b2 + tail3
    z2 = jnp.clip(tail3 / jnp.maximum(z1, _Z1_FLOOR), 0.0, 1.0)
    z3 = jnp.clip(b4 / jnp.maximum(tail3, _Z1_FLOOR), 0.0, 1.0)
    log_gamma = jnp.log10(theta[..., 7:9])
    return jnp.concatenate(
        [theta[..., :1], jnp.stack([z1, z2, z3], -1), theta[..., 5:7], log_gamma, theta[..., 9:]], axis=-1
    )


def log_abs_det_jacobian(u: Float[Array, "... 11"]) -> Float[Array, "..."]:
    """log |det d(phys) / d(u)| on the 11-D chart (beta4 dropped): log(z1^2 z2 (ln 10)^2 gamma1 gamma2)."""
    z1, z2 = u[..., 1], u[..., 2]
    return 2 * jnp.log(z1) + jnp.log(z2) + jnp.log(jnp.log(10.0)) * 2 + jnp.log(10.0) * (u[..., 6] + u[..., 7])


class FlowToPhysical(Transform):
    """numpyro transform from the 11-D flow space to the 12-D physical vector."""

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)

    def __call__(self, x):
        return flow_to_physical(x)

    def _inverse(self, y):
        return physical_to_flow(y)

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        return log_abs_det_jacobian(x)

    def forward_shape(self, shape):
        return shape[:-1] + (N_THETA,)

    def inverse_shape(self, shape):
        return shape[:-1] + (N_FLOW,)

    def tree_flatten(self):
        return (), ((), {})

    def __eq__(self, other):
        return isinstance(other, FlowToPhysical)


class SEDflowPrior(eqx.Module):
    """Uniform box prior in flow space (SEDflow), with redshift range for simulations.

    Attributes:
        low, high: ``(11,)`` box bounds in flow space (order :data:`FLOW_NAMES`).
        redshift_range: (z_min, z_max) of the training redshift distribution U(z_min, z_max).
    """

    low: Float[Array, " 11"]
    high: Float[Array, " 11"]
    redshift_range: tuple[float, float] = eqx.field(static=True, default=(0.0, 0.2))

    @property
    def flow_names(self) -> tuple[str, ...]:
        return FLOW_NAMES

    @property
    def theta_names(self) -> tuple[str, ...]:
        return THETA_NAMES

    def sample_flow(self, key: PRNGKeyArray, n: int) -> Float[Array, "n 11"]:
        """``n`` flow-space draws, uniform in the box."""
        return jax.random.uniform(key, (n, N_FLOW), self.low.dtype, self.low, self.high)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n 12"]:
        """``n`` physical parameter vectors."""
        return flow_to_physical(self.sample_flow(key, n))

    def sample_redshift(self, key: PRNGKeyArray, n: int) -> Float[Array, " n"]:
        lo, hi = self.redshift_range
        return jax.random.uniform(key, (n,), self.low.dtype, lo, hi)

    def in_support_flow(self, u: Float[Array, "... 11"]) -> Array:
        return jnp.all((u >= self.low) & (u <= self.high), axis=-1)

    def log_prob_flow(self, u: Float[Array, "... 11"]) -> Float[Array, "..."]:
        """Log density in flow space: -log(box volume) inside, -inf outside."""
        log_vol = jnp.sum(jnp.log(self.high - self.low))
        return jnp.where(self.in_support_flow(u), -log_vol, -jnp.inf)

    def log_prob(self, theta: Float[Array, "... 12"]) -> Float[Array, "..."]:
        """Log density of physical vectors on the simplex chart (see module docstring)."""
        u = physical_to_flow(theta)
        on_simplex = jnp.abs(jnp.sum(theta[..., 1:5], -1) - 1) <= BETA_SIMPLEX_ATOL
        lp = self.log_prob_flow(u) - log_abs_det_jacobian(u)
        return jnp.where(on_simplex & jnp.all(theta[..., 1:5] >= 0, -1), lp, -jnp.inf)

    def flow_distribution(self) -> dist.Distribution:
        """numpyro distribution over the 11-D flow space."""
        return dist.Uniform(self.low, self.high).to_event(1)

    def physical_distribution(self) -> dist.Distribution:
        """numpyro distribution over the 12-D physical vector (samples and log_prob)."""
        return dist.TransformedDistribution(self.flow_distribution(), FlowToPhysical())


SEDFLOW_BOUNDS = (_LOW, _HIGH)  # NumPy (low, high) in flow space


def sedflow_prior(redshift_range=(0.0, 0.2), dtype=None) -> SEDflowPrior:
    """The SEDflow prior (``provabgs_model.md`` §1.2-1.5), z ~ U(0, 0.2) by default."""
    dtype = dtype or jnp.result_type(float)
    return SEDflowPrior(jnp.asarray(_LOW, dtype), jnp.asarray(_HIGH, dtype), tuple(map(float, redshift_range)))
