"""PRNG keys: every random function of the package takes an explicit, typed key."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["check_key"]


def check_key(key) -> None:
    """Raise TypeError unless ``key`` is a new-style typed JAX PRNG key (``jax.random.key(seed)``).

    Raw uint32 keys (``jax.random.PRNGKey``) are refused: their splits differ from typed keys' under
    some configurations, and a typed key cannot be mistaken for data.
    """
    if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
        raise TypeError("New-style typed JAX PRNG keys required (jax.random.key(seed)).")
