"""Catalogue inference as small steps: read and flag -> flow -> importance -> fallback -> write.

* :mod:`sedflow_jax.io.catalog`: read a table into a :class:`~sedflow_jax.io.catalog.Catalogue` (photometry as
  read, the flow's x, flags, ids);
* :mod:`.config`: :class:`InferConfig` (what a run computes and writes);
* :mod:`.steps`: support flags, flow samples and summaries, ANPE-IS (:mod:`sedflow_jax.anpe.importance`), NUTS
  fallback, each a function of arrays;
* :mod:`.fallback`: :class:`FallbackConfig`, the chi-square check and the NUTS refits;
* :mod:`.checks`: the posterior-predictive check and the fallback classification;
* :mod:`.layout`: THE posterior file (datasets, attrs, :data:`SCHEMA_VERSION`, writer, reader);
* :mod:`.chunk`: the steps on one chunk of rows -> one part file;
* :mod:`.checkpoint`: the part files of a run (resume) and the output-path checks;
* :mod:`.merge`: :func:`merge_posterior_files` (a run's chunks; a catalogue split over machines);
* :mod:`.run`: :func:`infer_catalog`, which streams the catalogue chunk by chunk and merges the parts.

This package builds on :mod:`sedflow_jax.anpe` (flow, :class:`~sedflow_jax.anpe.Posterior`, support score,
importance sampling), never the reverse.
"""

from .checks import classify_fallback, posterior_predictive_check, training_colour_range
from .config import InferConfig
from .fallback import FallbackConfig, best_chi2, fallback_nuts_config, refit_rows, select_rows, trigger_strings
from .layout import SCHEMA_VERSION, PosteriorFileWriter, RowResults, read_posterior_file
from .merge import compare_posterior_files, merge_posterior_files
from .run import catalogue_from_x, infer_catalog
from .steps import summarise

__all__ = ["FallbackConfig", "InferConfig", "PosteriorFileWriter", "RowResults", "SCHEMA_VERSION", "best_chi2",
           "catalogue_from_x", "classify_fallback", "compare_posterior_files", "fallback_nuts_config", "infer_catalog", "merge_posterior_files",
           "posterior_predictive_check", "read_posterior_file", "refit_rows", "select_rows", "summarise",
           "training_colour_range", "trigger_strings"]
