"""The conditional flow q(theta_flow | x) with a fixed box bijection: every sample lies in the prior box.

Coordinates (all 11-D, order :data:`~sedflow_jax.params.FLOW_NAMES`):

* ``u``  flow-space parameters, inside the SEDflow prior box ``[low, high]``;
* ``y = logit((u - low) / (high - low))``, unbounded; the MAF models ``q(y | x_std)``;
* ``x`` = (5 mags, 5 sigma_m, z); the network sees ``(features(x) - x_mean) / x_std`` with
  ``features(x) = (mags, log10 sigma_m, z)``: simulated sigma_m spans 1e-3 .. 7e4 mag (faint, noisy
  draws), and its raw value made training diverge; the log keeps every input O(1).

Densities in flow space include the Jacobian of the fixed bijection:
``log q(u | x) = log q_y(y | x) - sum log((high - low) p (1 - p))`` with ``p = sigmoid(y)``.
Sampling maps ``y`` back through ``low + (high - low) sigmoid(y)``, so no rejection loop exists and no
sample leaves the (closed) box: SEDflow's rejection-sampling stall cannot happen.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..params import N_FLOW
from ..photometry import SDSS_LAYOUT, XLayout

__all__ = ["FlowConfig", "ConditionalFlow", "build_flow", "x_features", "box_to_unbounded", "unbounded_to_box", "N_X"]

N_X = SDSS_LAYOUT.dim  # conditioning dimension: 5 mags, 5 sigma_m, redshift
_P_EPS = 1e-6  # clip of (u - low)/(high - low) before the logit (float32: logit(1e-6) = -13.8)


@dataclass(frozen=True)
class FlowConfig:
    """Architecture of the conditional MAF (saved as JSON beside the weights).

    Attributes:
        flow_layers: number of masked autoregressive layers (each followed by a permutation).
        nn_width: hidden width of each MADE.
        nn_depth: hidden layers per MADE.
        invert: flowjax's ``invert``. ``False`` makes *sampling* one network pass per
            layer and density evaluation (training) sequential over the 11 dimensions; ``True`` is the
            reverse (SEDflow / sbi direction). The default, False, was chosen from the measured trade-off in docs/anpe.md.
        transformer: ``"affine"`` or ``"rqs"`` (rational-quadratic spline).
        knots, interval: spline settings (``"rqs"`` only).
        activation: ``"relu"``, ``"tanh"`` or ``"gelu"``.
    """

    flow_layers: int = 10
    nn_width: int = 256
    nn_depth: int = 1
    invert: bool = False
    transformer: str = "affine"
    knots: int = 8
    interval: float = 8.0
    activation: str = "relu"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> FlowConfig:
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


def _activation(name: str):
    return {"relu": jax.nn.relu, "tanh": jnp.tanh, "gelu": jax.nn.gelu}[name]


def build_flow(key: PRNGKeyArray, config: FlowConfig):
    """A flowjax conditional MAF over the 11-D unbounded coordinates, conditioned on 11-D x."""
    from flowjax.bijections import RationalQuadraticSpline
    from flowjax.distributions import Normal
    from flowjax.flows import masked_autoregressive_flow

    if config.transformer == "affine":
        transformer = None
    elif config.transformer == "rqs":
        transformer = RationalQuadraticSpline(knots=config.knots, interval=config.interval)
    else:
        raise ValueError(f"transformer must be 'affine' or 'rqs', got {config.transformer!r}")
    return masked_autoregressive_flow(
        key, base_dist=Normal(jnp.zeros(N_FLOW)), transformer=transformer, cond_dim=N_X,
        flow_layers=config.flow_layers, nn_width=config.nn_width, nn_depth=config.nn_depth,
        nn_activation=_activation(config.activation), invert=config.invert,
    )


def x_features(x):
    """Fixed feature map of x before standardisation: (mags, log10 sigma_m, z)."""
    layout = XLayout.of(x)
    log_sigma = jnp.log10(jnp.maximum(layout.sigma_mag(x), 1e-6))
    return jnp.concatenate([layout.mag(x), log_sigma, layout.redshift(x)[..., None]], axis=-1)


def box_to_unbounded(u, low, high):
    """``y = logit((u - low) / (high - low))`` (clipped to [1e-6, 1 - 1e-6]) and log|dy/du| summed."""
    p = jnp.clip((u - low) / (high - low), _P_EPS, 1 - _P_EPS)
    y = jnp.log(p) - jnp.log1p(-p)
    log_det = -jnp.sum(jnp.log(high - low) + jnp.log(p) + jnp.log1p(-p), axis=-1)
    return y, log_det


def unbounded_to_box(y, low, high):
    """``u = low + (high - low) sigmoid(y)``, clipped to the closed box (float rounding)."""
    return jnp.clip(low + (high - low) * jax.nn.sigmoid(y), low, high)


class ConditionalFlow(eqx.Module):
    """q(u | x): flowjax MAF on logit-box coordinates plus the fixed standardisation of x.

    Attributes:
        flow: flowjax ``Transformed`` distribution over y (11-D), condition x_std (11-D).
        x_mean, x_std: standardisation of :func:`x_features` (training-set statistics).
        low, high: prior box in flow space.
        config: the architecture (static).
    """

    flow: eqx.Module
    x_mean: Float[Array, " 11"]
    x_std: Float[Array, " 11"]
    low: Float[Array, " 11"]
    high: Float[Array, " 11"]
    config: FlowConfig = eqx.field(static=True)

    def standardise(self, x):
        return (x_features(x) - self.x_mean) / self.x_std

    def log_prob(self, u: Float[Array, "... 11"], x: Float[Array, "... 11"]) -> Float[Array, "..."]:
        """log q(u | x) in flow space (box coordinates, Jacobian of the bijection included)."""
        y, log_det = box_to_unbounded(u, self.low, self.high)
        return self.flow.log_prob(y, self.standardise(x)) + log_det

    def log_prob_unbounded(self, y, x):
        """log q_y(y | x): the training objective's density (no box Jacobian)."""
        return self.flow.log_prob(y, self.standardise(x))

    def sample_one(self, key: PRNGKeyArray, x: Float[Array, " 11"], n: int) -> Float[Array, "n 11"]:
        """``n`` flow-space samples for one galaxy (the kernel; vmap it over galaxies)."""
        y = self.flow.sample(key, (n,), condition=self.standardise(x))
        return unbounded_to_box(y, self.low, self.high)


def config_json(flow: ConditionalFlow) -> str:
    return json.dumps(flow.config.to_json())


def n_params(flow: ConditionalFlow) -> int:
    leaves = jax.tree_util.tree_leaves(eqx.filter(flow.flow, eqx.is_inexact_array))
    return int(sum(np.prod(v.shape) for v in leaves))


def skeleton(config: FlowConfig, dtype=jnp.float32) -> ConditionalFlow:
    """An untrained :class:`ConditionalFlow` with the right structure (for deserialisation)."""
    z = jnp.zeros(N_X, dtype)
    return ConditionalFlow(build_flow(jr.key(0), config), z, z + 1, jnp.zeros(N_FLOW, dtype), jnp.ones(N_FLOW, dtype), config)
