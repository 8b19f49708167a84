"""Training-set simulation: prior draws -> PROVABGS photometry -> SDSS-like noise -> HDF5."""

from .core import (
    COLUMNS,
    FLAG_BITS,
    SimulationConfig,
    Simulator,
    build_simulator,
    describe_flags,
    iter_chunks,
    simulate_arrays,
    simulate_chunk,
)
from .noise import NoiseModel, fit_noise_model, load_noise_model, read_mag_catalogue, validate_noise_model
from .storage import TrainingSetError, check_training_set, load_training_set, simulate_to_hdf5

__all__ = [
    "COLUMNS",
    "FLAG_BITS",
    "NoiseModel",
    "SimulationConfig",
    "Simulator",
    "TrainingSetError",
    "build_simulator",
    "check_training_set",
    "describe_flags",
    "fit_noise_model",
    "iter_chunks",
    "load_noise_model",
    "load_training_set",
    "read_mag_catalogue",
    "simulate_arrays",
    "simulate_chunk",
    "simulate_to_hdf5",
    "validate_noise_model",
]
