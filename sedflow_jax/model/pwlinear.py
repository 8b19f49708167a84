"""Piecewise-linear functions of lookback time, extrapolated linearly, with exact integrals."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["PiecewiseLinear"]


class PiecewiseLinear(eqx.Module):
    """``n_fn`` piecewise-linear functions sharing ``n_node`` nodes.

    Outside the nodes the end segments are extrapolated (as scipy's k=1
    ``InterpolatedUnivariateSpline`` that PROVABGS uses). ``cumint(t)`` is the exact integral
    from the first node to ``t`` (negative below it), so bin integrals are differences.

    Attributes:
        t_nodes: ``(n_node,)`` node times, increasing.
        values: ``(n_fn, n_node)`` node values.
        slopes: ``(n_fn, n_node - 1)`` segment slopes.
        cum_nodes: ``(n_fn, n_node)`` integral from the first node to each node.
    """

    t_nodes: Float[Array, " n_node"]
    values: Float[Array, "n_fn n_node"]
    slopes: Float[Array, "n_fn n_seg"]
    cum_nodes: Float[Array, "n_fn n_node"]

    @classmethod
    def from_nodes(cls, t_nodes, values, dtype=None) -> "PiecewiseLinear":
        t = np.asarray(t_nodes, np.float64)
        v = np.atleast_2d(np.asarray(values, np.float64))
        dt = np.diff(t)
        slopes = np.diff(v, axis=1) / dt
        cum = np.concatenate([np.zeros((v.shape[0], 1)), np.cumsum(0.5 * (v[:, 1:] + v[:, :-1]) * dt, axis=1)], axis=1)
        dtype = dtype or jnp.result_type(float)
        return cls(*(jnp.asarray(a, dtype) for a in (t, v, slopes, cum)))

    def _segment(self, t: Array) -> tuple[Array, Array]:
        j = jnp.clip(jnp.searchsorted(self.t_nodes, t, side="right") - 1, 0, self.t_nodes.shape[0] - 2)
        return j, t - self.t_nodes[j]

    def __call__(self, t: Float[Array, " n_t"]) -> Float[Array, "n_fn n_t"]:
        """Function values at times ``t``."""
        j, d = self._segment(t)
        return self.values[:, j] + self.slopes[:, j] * d

    def cumint(self, t: Float[Array, " n_t"]) -> Float[Array, "n_fn n_t"]:
        """Exact integral from the first node to ``t``."""
        j, d = self._segment(t)
        return self.cum_nodes[:, j] + self.values[:, j] * d + 0.5 * self.slopes[:, j] * d * d
