"""Expose the CPU cores as separate JAX devices, before JAX starts.

XLA runs one small-matrix NUTS trajectory on about one core; with the cores exposed as host
devices (``--xla_force_host_platform_device_count``), :func:`sedflow_jax.mcmc.run_nuts` spreads a
galaxy's chains over them with ``pmap`` (measured on a 2-core CPU: 84k vs 48k gradients/s for 4
chains, ``docs/nuts.md``). It must run before the first ``import jax`` of the process; the CLI's
``nuts`` command and the NUTS benchmarks call it first thing.
"""

from __future__ import annotations

import os
import sys

__all__ = ["expose_cpu_cores"]


def expose_cpu_cores(min_devices: int = 1, max_devices: int = 8) -> bool:
    """Set ``XLA_FLAGS`` so that each CPU core is a JAX host device, and at least ``min_devices`` of them;
    True if it was set.

    NUTS callers ask for one device per chain (``min_devices=4``): chains sharing a device advance in
    lock-step, so the chain with the longest trajectories sets its partner's pace; with a device each, the
    OS shares the cores and a chain that finishes early frees its core (``docs/nuts.md``).
    Does nothing when JAX is already imported (too late) or the flag is already given.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in flags:
        return False
    n = max(1, min(max(os.cpu_count() or 1, min_devices), max_devices))
    if n == 1:
        return False
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
    return True
