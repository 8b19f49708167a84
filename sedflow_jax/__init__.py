"""sedflow_jax: the PROVABGS SED model, ANPE and NUTS for galaxy photometry, in JAX.

Importing the package never changes global JAX configuration (no x64 flip); the CLI or the
user chooses float64 (``JAX_ENABLE_X64=1`` or ``jax.config.update``).
"""

__version__ = "0.1.0"
