"""Train a :class:`~sedflow_jax.anpe.infer.Posterior` end to end and write every artefact beside it.

``model_dir/``: ``flow.eqx`` + ``model.json`` (configs, standardisation, box, training summary),
``support.npz``, ``history.json``, ``training_curve.png`` and ``checkpoint.{eqx,json}`` (resume).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..io import atomic_path, atomic_write_json
from .data import load_pairs
from .flow import FlowConfig, n_params
from .infer import Posterior
from .support import fit_support
from .train import TrainConfig, train

__all__ = ["train_posterior", "plot_training_curve"]


def plot_training_curve(history: dict, path) -> None:
    from ..plotting import new_figure

    ep = np.arange(1, len(history["val_loss"]) + 1)
    fig, ax = new_figure(figsize=(5, 3.4))
    ax.plot(ep, history["train_loss"], label="train (epoch mean)")
    ax.plot(ep, history["val_loss"], label="validation")
    if history.get("best_epoch", -1) > 0:
        ax.axvline(history["best_epoch"], color="0.6", ls=":", label=f"best (epoch {history['best_epoch']})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"$-\log q(y\,|\,x)$ [nats]")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def train_posterior(data: str | os.PathLike, out: str | os.PathLike, *, flow_config: FlowConfig | None = None,
                    train_config: TrainConfig = TrainConfig(), resume: bool = False, progress: bool = True,
                    init_from: str | os.PathLike | None = None, log=print) -> tuple[Posterior, dict]:
    """Train on an HDF5 training set (``sedflow-jax simulate`` output) and save the model into ``out``.

    ``flow_config``: the architecture; None: ``init_from``'s, else ``FlowConfig()``.
    ``init_from``: a saved model directory to fine-tune (see ``train(init_flow=...)``); a ``flow_config``
    given with it must match its architecture.
    """
    from ..simulate import check_training_set

    attrs = check_training_set(data)
    init = Posterior.load(init_from) if init_from is not None else None
    if flow_config is None:
        flow_config = init.flow.config if init is not None else FlowConfig()
    meta_ts = attrs["metadata"]
    zr = tuple(meta_ts.get("config", {}).get("redshift_range", (0.0, 0.2)))
    flow, hist = train(data, out, flow_config=flow_config, train_config=train_config, resume=resume,
                       progress=progress, init_flow=None if init is None else init.flow, log=log)
    _, x, _ = load_pairs(data, max_rows=train_config.max_rows)
    support = fit_support(x[np.all(np.isfinite(x), 1)], seed=train_config.seed)
    meta = {
        "name": Path(out).name,
        "train_config": train_config.to_json(),
        "redshift_range": list(map(float, zr)),
        "n_params": n_params(flow),
        "training_set": {"path": str(data), "n_rows": int(attrs["n_rows"]), "n_valid": int(attrs["n_valid"]),
                         "identity": json.loads(attrs["identity"])},
        "history": {k: hist[k] for k in ("best_epoch", "best_val_loss", "stop_reason", "n_skipped_steps")},
        "epochs_run": len(hist["val_loss"]),
        "init_from": None if init is None else {"path": str(init_from), "name": init.meta.get("name"),
                                                "initial_val_loss": hist.get("initial_val_loss")},
        "seconds_training": float(np.sum(hist["epoch_seconds"])),
        "support": {"k": support.k, "quantile": support.quantile, "threshold": support.threshold,
                    "n_ref": int(support.ref.shape[0])},
    }
    post = Posterior(flow, support, meta)
    post.save(out)
    atomic_write_json(Path(out) / "history.json", hist)
    plot_training_curve(hist, Path(out) / "training_curve.png")
    return post, hist
