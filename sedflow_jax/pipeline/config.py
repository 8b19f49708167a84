"""Settings of one catalogue-inference run (:func:`sedflow_jax.pipeline.infer_catalog`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ..errors import InputError
from .fallback import FallbackConfig

__all__ = ["InferConfig"]


@dataclass(frozen=True)
class InferConfig:
    """What :func:`~sedflow_jax.pipeline.infer_catalog` computes and writes.

    Attributes:
        n_samples: posterior samples per galaxy.
        seed: PRNG seed of the flow's draws (galaxy ``i`` of the valid rows uses ``fold_in(key(seed), i)``) and of
            ANPE-IS (catalogue row ``r`` uses ``fold_in(key(seed), r)``).
        write_samples: store every sample ``(n, n_samples, 12)`` besides the summaries.
        properties: also derived properties (surviving M*, SFRs, Z_MW, t_MW) of the first ``n_properties``
            samples per galaxy (one PROVABGS model evaluation per sample).
        n_properties: samples per galaxy for ``properties``.
        importance: proposal draws per galaxy for ANPE-IS on every valid row inside the support (``None``: off).
            Where the reweighting is reliable (Pareto k-hat <= 0.7, ESS >= 400) its resampled draws replace the
            flow's (``method = 'anpe_is'``); elsewhere the flow's stay and ``is_status`` says why. Runs before the
            fallback, which still sees the flow's chi-square.
        importance_pilot: > 0: the adaptive ANPE-IS proposal (two pilot rounds of this many draws move the flow's
            latent onto the weighted draws before the final ``importance`` draws); 0: the flow itself.
        fallback: a :class:`~sedflow_jax.pipeline.fallback.FallbackConfig` to refit rows outside the training
            support or failing the chi-square check with NUTS (``None``: off).
        chunk_rows: catalogue rows per chunk: read, inferred, checkpointed and written together (memory is bounded by
            a chunk; chunks are cut at multiples of this, so resumed and split runs see the same chunks).
        progress: show progress bars.
    """

    n_samples: int = 1000
    seed: int = 0
    write_samples: bool = True
    properties: bool = False
    n_properties: int = 100
    importance: int | None = None
    importance_pilot: int = 0
    fallback: FallbackConfig | None = None
    chunk_rows: int = 16384
    progress: bool = True

    def __post_init__(self):
        if int(self.n_samples) < 1 or int(self.n_properties) < 1:
            raise InputError(f"n_samples (--n-samples) and n_properties must be >= 1, got {self.n_samples}, "
                             f"{self.n_properties}")
        if int(self.chunk_rows) < 1:
            raise InputError(f"chunk_rows (--chunk-rows) must be >= 1, got {self.chunk_rows}")
        if self.importance is not None and int(self.importance) < 2:
            raise InputError(f"importance (proposal draws per galaxy) must be >= 2 or None, got {self.importance}")
        if int(self.importance_pilot) < 0 or (self.importance_pilot and not self.importance):
            raise InputError(f"importance_pilot must be >= 0 and needs importance; got {self.importance_pilot}")

    def settings(self) -> dict:
        """Everything that determines the output (all fields but ``progress``), JSON-ready."""
        d = asdict(self)
        d.pop("progress")
        return json.loads(json.dumps(d, default=str))

    @property
    def needs_model(self) -> bool:
        """Whether the run evaluates the SED model (derived properties, ANPE-IS or the fallback's check)."""
        return bool(self.properties or self.fallback is not None or self.importance)
