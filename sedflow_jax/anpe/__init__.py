"""Amortised neural posterior estimation (ANPE): a conditional MAF q(theta | x) over the SEDflow box.

* :mod:`.flow`: :class:`FlowConfig`, :class:`ConditionalFlow` (logit box bijection + standardised x);
* :mod:`.train`: :class:`TrainConfig`, :func:`train` (optax Adam, checkpoints, resume);
* :mod:`.infer`: :class:`Posterior` (load/save, shipped models by name, chunked sharded sampling, log_prob,
  support score);
* :mod:`.support`: kNN training-support score; :mod:`.build`: :func:`train_posterior` (all artefacts);
* :mod:`.importance`: ANPE-IS (the flow's draws reweighted by the exact posterior; adaptive latent proposal).

Catalogue inference (flags -> flow -> ANPE-IS -> NUTS fallback -> posterior file) is :mod:`sedflow_jax.pipeline`,
which builds on this package (never the reverse).
"""

from .build import train_posterior
from .flow import ConditionalFlow, FlowConfig
from .infer import SHIPPED_MODELS, Posterior, default_model_dir, resolve_model_dir
from .support import SupportModel, fit_support
from .train import TrainConfig, train

__all__ = ["ConditionalFlow", "FlowConfig", "Posterior", "SHIPPED_MODELS", "SupportModel", "TrainConfig",
           "default_model_dir", "fit_support", "resolve_model_dir", "train", "train_posterior"]
