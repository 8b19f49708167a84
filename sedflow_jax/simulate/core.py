"""Training-set simulator: prior -> redshift -> noiseless fluxes -> noise -> flags -> x.

Randomness is **per row**: row ``i`` uses ``jr.fold_in(base_key, i)``, so the rows do not depend on
the chunk size, the number of devices or where a run was resumed. Cuts are per-row **flags**, not
deletions: every draw keeps its row (its position is its index), and ``flags`` (uint8 bit mask,
:data:`FLAG_BITS`, bits of the package-wide :data:`sedflow_jax.flags.FLAGS`) says why a row is unusable;
``flags == 0`` are the training rows. The counts of each flag are stored with the set and printed by
the CLI, so no cut is silent.

Layers (``docs/style`` §2.3): :meth:`Simulator.row` is the one-galaxy kernel; :func:`simulate_chunk`
is the one compiled step (``vmap`` over row indices, fixed chunk size, sharded over all local
devices); :func:`simulate_arrays` and :func:`~sedflow_jax.simulate.storage.simulate_to_hdf5` are the
host drivers.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..model import ProvabgsModel
from ..params import FLOW_NAMES, THETA_NAMES
from ..priors.sedflow import flow_to_physical, sedflow_prior
from ..errors import InputError
from ..flags import FLAGS
from ..photometry import XLayout, flux_to_mag, sigma_flux_to_mag
from .noise import NoiseModel, load_noise_model
from ..keys import check_key

__all__ = [
    "FLAG_BITS",
    "SimulationConfig",
    "Simulator",
    "build_simulator",
    "simulate_chunk",
    "simulate_arrays",
    "describe_flags",
    "COLUMNS",
]

#: The per-row cut flags a simulation sets (name -> bit, from :data:`sedflow_jax.flags.FLAGS`; training-set
#: format 2). A row is a training row iff flags == 0.
#:
#: * ``missing_value``: any non-finite theta, z, flux, sigma or x entry;
#: * ``flux_nonpositive``: noisy flux <= 0 in a band (magnitude, so x, undefined);
#: * ``error_nonpositive``: a band drew sigma_m <= 0 (SEDflow removes these);
#: * ``redshift_outside_range``: z outside [0, model z_max] (only with a user redshift distribution);
#: * ``outside_mag_range``: noiseless magnitude outside the reference range (only with mag_cut).
FLAG_BITS: dict[str, int] = {name: FLAGS[name] for name in (
    "missing_value", "flux_nonpositive", "error_nonpositive", "redshift_outside_range", "outside_mag_range")}

#: Stored per-row columns (name -> description); shapes are (n,) or (n, k).
COLUMNS = ("theta", "theta_flow", "redshift", "flux_nmgy", "flux_obs_nmgy", "sigma_flux_nmgy", "x", "flags")


@dataclass(frozen=True)
class SimulationConfig:
    """What defines a training set (saved with it). The chunk size is *not* part of it.

    Attributes:
        n: number of draws (rows).
        seed: base seed; row i uses ``fold_in(key(seed), i)``.
        bands: speclite filter names or group.
        redshift_range: (z_min, z_max) of the default U(z_min, z_max) redshift distribution.
        mag_cut: flag rows whose noiseless magnitude lies outside ``mag_range`` in any band.
        mag_range: ``((lo, hi), ...)`` per band; None: the noise model's calibration catalogue range.
        burst_rule: model burst rule.
    """

    n: int
    seed: int = 0
    bands: str | tuple[str, ...] = "sdss2010-ugriz"
    redshift_range: tuple[float, float] = (0.0, 0.2)
    mag_cut: bool = False
    mag_range: tuple[tuple[float, float], ...] | None = None
    burst_rule: str = "fsps_quirk"

    def __post_init__(self):
        if int(self.n) < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if not (0 <= int(self.seed) < 2**63):
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        lo, hi = self.redshift_range
        if not (0.0 <= lo < hi):
            raise ValueError(f"redshift_range must satisfy 0 <= z_min < z_max, got {self.redshift_range}")


def _describe(obj) -> dict:
    """A JSON-able description of a prior / distribution (class and array-valued parameters)."""
    d: dict[str, Any] = {"class": f"{type(obj).__module__}.{type(obj).__qualname__}"}
    names = getattr(obj, "arg_constraints", None) or {}
    fields = list(names) if names else [k for k in ("low", "high", "redshift_range") if hasattr(obj, k)]
    for k in fields:
        v = getattr(obj, k, None)
        if v is None:
            continue
        d[k] = np.asarray(v, np.float64).round(8).tolist() if not isinstance(v, (tuple, str)) else list(v)
    return d


class Simulator(eqx.Module):
    """Everything one row needs: model, prior, redshift distribution, noise model, cut ranges."""

    model: ProvabgsModel
    prior: Any
    redshift_dist: Any
    noise: NoiseModel
    mag_range: Float[Array, "n_band 2"]
    mag_cut: bool = eqx.field(static=True, default=False)

    @property
    def n_band(self) -> int:
        return self.model.n_band

    def _to_physical(self, u):
        fn = getattr(self.prior, "flow_to_physical", None)
        return fn(u) if callable(fn) else flow_to_physical(u)

    def row(self, base_key: PRNGKeyArray, index) -> dict[str, Array]:
        """One training row: the kernel, for a single global row index."""
        dtype = self.model.dtype
        k_theta, k_z, k_noise = jr.split(jr.fold_in(base_key, index), 3)
        u = self.prior.sample_flow(k_theta, 1)[0].astype(dtype)
        theta = self._to_physical(u).astype(dtype)
        z = jnp.asarray(self.redshift_dist.sample(k_z), dtype)
        z_ok = (z >= 0) & (z <= self.model.z_max)
        flux = self.model(theta, jnp.clip(z, 0.0, self.model.z_max))
        sigma_f, flux_obs = self.noise.apply(k_noise, flux)
        mag_obs = flux_to_mag(flux_obs)
        x = XLayout(self.n_band).assemble(mag_obs, sigma_flux_to_mag(sigma_f, flux_obs), z)
        finite = (jnp.all(jnp.isfinite(theta)) & jnp.all(jnp.isfinite(u)) & jnp.isfinite(z)
                  & jnp.all(jnp.isfinite(flux)) & jnp.all(jnp.isfinite(flux_obs))
                  & jnp.all(jnp.isfinite(sigma_f)) & jnp.all(jnp.isfinite(x)))
        mag_true = flux_to_mag(flux)
        out_mag = jnp.any((mag_true < self.mag_range[:, 0]) | (mag_true > self.mag_range[:, 1]) | ~jnp.isfinite(mag_true))
        bit = lambda cond, name: jnp.where(cond, jnp.uint8(FLAG_BITS[name]), jnp.uint8(0))  # noqa: E731
        flags = (
            bit(jnp.any(~(sigma_f > 0)) & jnp.all(flux > 0), "error_nonpositive")
            | bit(~finite, "missing_value")
            | bit(jnp.any(flux_obs <= 0), "flux_nonpositive")
            | bit(out_mag & self.mag_cut, "outside_mag_range")
            | bit(~z_ok, "redshift_outside_range")
        )
        return {
            "theta": theta,
            "theta_flow": u,
            "redshift": z,
            "flux_nmgy": flux,
            "flux_obs_nmgy": flux_obs,
            "sigma_flux_nmgy": sigma_f,
            "x": x,
            "flags": flags,
        }


@eqx.filter_jit
def simulate_chunk(sim: Simulator, base_key: PRNGKeyArray, index: Array) -> dict[str, Array]:
    """The compiled step: rows for a fixed-size array of global indices (vmapped, shardable)."""
    return jax.vmap(sim.row, in_axes=(None, 0))(base_key, index)




def describe_flags(flags: np.ndarray) -> dict[str, int]:
    """Counts: ``n``, ``n_valid`` and, per flag name, the rows with that bit set."""
    flags = np.asarray(flags)
    out = {"n": int(flags.size), "n_valid": int(np.sum(flags == 0))}
    for name, bit in FLAG_BITS.items():
        out[name] = int(np.sum((flags & bit) != 0))
    return out


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def build_simulator(
    config: SimulationConfig,
    *,
    prior=None,
    redshift_dist=None,
    noise: NoiseModel | None = None,
    ssp=None,
    basis=None,
    model: ProvabgsModel | None = None,
    dtype=None,
) -> tuple[Simulator, dict]:
    """Build the :class:`Simulator` and its provenance metadata.

    Args:
        config: the set's definition.
        prior: any object with ``sample_flow(key, n) -> (n, n_flow)`` (and optionally
            ``flow_to_physical(u) -> (..., 12)``); default :func:`~sedflow_jax.priors.sedflow_prior`.
        redshift_dist: any object with ``sample(key) -> scalar`` (e.g. a numpyro distribution);
            default U(config.redshift_range). Draws outside [0, model z_max] are flagged.
        noise: noise model whose bands match the filters; default the shipped SDSS fit.
        ssp, basis: passed to :meth:`ProvabgsModel.build` (None: defaults).
        model: a prebuilt model (then ``ssp``/``basis`` are only used for metadata).
        dtype: float dtype (default JAX's default float).

    Returns:
        ``(simulator, metadata)``; metadata is JSON-able and identifies the set for resume.
    """
    import numpyro.distributions as dist

    dtype = dtype or jnp.result_type(float)
    z_lo, z_hi = map(float, config.redshift_range)
    if model is None:
        model = ProvabgsModel.build(ssp, basis, config.bands, z_max=z_hi, burst_rule=config.burst_rule, dtype=dtype)
    prior = sedflow_prior(dtype=dtype) if prior is None else prior
    if not hasattr(prior, "sample_flow"):
        raise TypeError(f"prior must have a sample_flow(key, n) method; got {type(prior).__name__}")
    redshift_dist = dist.Uniform(jnp.asarray(z_lo, dtype), jnp.asarray(z_hi, dtype)) if redshift_dist is None else redshift_dist
    noise = load_noise_model(dtype=dtype) if noise is None else noise
    if tuple(noise.bands) != tuple(model.filters.names):
        raise InputError(f"noise model bands {noise.bands} do not match the filters {model.filters.names}; "
                         "fit a noise model for these bands (sedflow-jax noise fit)")
    if config.mag_range is not None:
        mag_range = np.asarray(config.mag_range, np.float64)
        if mag_range.shape != (model.n_band, 2):
            raise InputError(f"mag_range must be ({model.n_band}, 2), got {mag_range.shape}")
    else:
        mag_range = np.asarray(noise.mag_range, np.float64)
    sim = Simulator(model, prior, redshift_dist, noise, jnp.asarray(mag_range, dtype), bool(config.mag_cut))
    return sim, _metadata(config, model, prior, redshift_dist, noise, mag_range, ssp)


def _metadata(config: SimulationConfig, model: ProvabgsModel, prior, redshift_dist, noise: NoiseModel,
              mag_range: np.ndarray, ssp) -> dict:
    """JSON-able provenance of a training set (its identity for resume is drawn from it)."""
    from .. import __version__
    from ..sps.bc03 import default_ssp_path

    if ssp is None:
        ssp_path = default_ssp_path()
        ssp_desc = {"path": "default BC03 table (sedflow_jax.sps.bc03.default_ssp_path)", "sha256": _file_sha256(ssp_path)}
    elif isinstance(ssp, (str, os.PathLike)):
        ssp_desc = {"path": str(Path(ssp).name), "sha256": _file_sha256(ssp)}
    else:
        ssp_desc = {"path": "in-memory SSPTable", "sha256": None}
    return {
        "config": asdict(config) | {"bands": list(model.filters.names)},
        "package": "sedflow_jax",
        "package_version": __version__,
        "model": {
            "class": "sedflow_jax.model.ProvabgsModel",
            "burst_rule": model.burst_rule,
            "z_max": model.z_max,
            "basis": model.basis_name,
            "filters": list(model.filters.names),
            "dtype": str(np.dtype(model.dtype)),
            "n_wave": int(model.wave_aa.shape[0]),
            "ssp_table": ssp_desc,
            "ssp_attrs": dict(model.ssp_attrs),
        },
        "prior": _describe(prior),
        "redshift_distribution": _describe(redshift_dist),
        "noise_model": {"sha256": noise.sha256(), "bands": list(noise.bands), "meta": noise.meta,
                        "table": noise.to_dict()},
        "mag_range": mag_range.round(6).tolist(),
        "flag_bits": FLAG_BITS,
        "row_key": "jax.random.fold_in(jax.random.key(seed), row_index), split into (theta, z, noise)",
        "x_columns": XLayout(len(model.filters.names)).feature_names(model.filters.names),
        "theta_names": list(THETA_NAMES),
        "flow_names": list(FLOW_NAMES),
    }


#: Rows per device per compiled step. Fixed, and steps are aligned to multiples of it, so every row is
#: always computed at the same position of a same-shaped block: XLA's float results can differ in the
#: last bit between batch shapes, and this makes the rows bitwise independent of --chunk and resume.
STEP_ROWS = 2048


def _row_sharding():
    """(NamedSharding over all local devices or None, rows per compiled step)."""
    devices = jax.local_devices()
    step = STEP_ROWS * len(devices)
    if len(devices) == 1:
        return None, step
    mesh = jax.sharding.Mesh(np.asarray(devices), ("rows",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("rows")), step


def write_unit(chunk: int) -> int:
    """The chunk actually used: ``chunk`` rounded up to whole compiled steps (>= 1 step)."""
    _, step = _row_sharding()
    return max(1, -(-int(chunk) // step)) * step


def iter_chunks(sim: Simulator, key: PRNGKeyArray, start: int, stop: int, chunk: int):
    """Yield ``(row0, rows_dict_numpy)`` covering rows [start, stop), about ``chunk`` rows at a time.

    Work is done in compiled steps of a fixed shape (``STEP_ROWS`` per device, sharded over all local
    devices), aligned to multiples of the step size; rows outside [start, stop) are computed and
    dropped (padding). Steps are dispatched ahead, so device work overlaps the caller's writing.
    Yielded chunk boundaries (other than ``start``/``stop``) are multiples of the step size.
    """
    check_key(key)
    if stop >= 2**32:
        raise ValueError("at most 2**32 rows per set (row indices are uint32)")
    sharding, step = _row_sharding()
    unit = write_unit(chunk)

    def launch(r0):
        idx = np.arange(r0, r0 + step, dtype=np.uint32)
        idx = jax.device_put(idx, sharding) if sharding is not None else jnp.asarray(idx)
        return simulate_chunk(sim, key, idx)

    first = (start // step) * step
    bounds = list(range(first, stop, unit))  # chunk starts, aligned
    steps = [(b, r) for b in bounds for r in range(b, min(b + unit, -(-stop // step) * step), step)]
    ahead = 2 * max(1, unit // step)  # steps in flight
    inflight = {}
    nxt = 0

    def fill():
        nonlocal nxt
        while nxt < len(steps) and len(inflight) < ahead:
            inflight[steps[nxt][1]] = launch(steps[nxt][1])
            nxt += 1

    fill()
    for b in bounds:
        parts = []
        for r in range(b, min(b + unit, -(-stop // step) * step), step):
            res = inflight.pop(r)
            parts.append({k: np.asarray(v) for k, v in res.items()})
            fill()
        rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        lo, hi = max(start, b), min(stop, b + unit)
        yield lo, {k: v[lo - b : hi - b] for k, v in rows.items()}


def simulate_arrays(key: PRNGKeyArray, sim: Simulator, n: int, *, start: int = 0, chunk: int = 4096) -> dict[str, np.ndarray]:
    """Rows [start, start + n) in memory (NumPy), for small sets, tests and notebooks."""
    parts = [rows for _, rows in iter_chunks(sim, key, start, start + n, chunk)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
