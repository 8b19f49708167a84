"""What the benchmark scripts share: the machine record, the results file, the real SDSS galaxies.

Benchmarks import this module (it sits beside them, so ``python benchmarks/NAME.py`` finds it) and the
package's public API only.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared"

__all__ = ["ROOT", "RESULTS", "SHARED", "machine_info", "record", "write_results", "read_sdss_mgs_both"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU model, cores, the JAX device kind and count, versions: named in every results file."""
    import jax

    dev = jax.devices()[0]
    return {"cpu_model": _cpu_model(), "n_cores": os.cpu_count(), "platform": dev.platform,
            "device_kind": getattr(dev, "device_kind", ""), "n_devices": jax.local_device_count(),
            "jax_version": jax.__version__, "python": platform.python_version(), "os": platform.platform()}


def record(name: str, value, unit: str, **params) -> dict:
    """One benchmark record ``{"name", "value", "unit", "params"}``."""
    return {"name": name, "value": float(value), "unit": unit, "params": params}


def write_results(path, records: list, **extra) -> dict:
    """Write ``{"machine": machine_info(), "records": records, **extra}`` atomically; returns it."""
    from sedflow_jax.io import atomic_write_json

    payload = {"machine": machine_info(), "records": records, **extra}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, payload)
    return payload


def read_sdss_mgs_both(shared: Path = SHARED, limit: int | None = None) -> dict:
    """Both MGS files of ``shared/data/sdss_mgs`` (train then test), ids 'train:<row>' / 'test:<row>';
    ``limit``: the first limit // 2 rows of each."""
    from sedflow_jax.io.catalog import read_sdss_mgs

    tabs = [read_sdss_mgs(Path(shared) / "data" / "sdss_mgs" / f"SDSS_MGS.{part}", id_prefix=part)
            for part in ("train", "test")]
    if limit:
        tabs = [{k: v[: limit // 2] for k, v in t.items()} for t in tabs]
    return {k: np.concatenate([t[k] for t in tabs]) for k in tabs[0]}
