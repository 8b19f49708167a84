"""Maximum-likelihood training of the conditional flow: optax Adam, clipping, NaN guard, early stopping,
atomic per-epoch checkpoints and bitwise resume.

Layers: :func:`train_step` is the one compiled step (loss + grad + optax update, fixed batch shape);
:func:`train` is the host driver (shuffling, validation, checkpoints, progress bar). Every random choice
is a pure function of ``(seed, epoch)``, and the checkpoint holds parameters, optimizer state, best
parameters and history, so a resumed run reproduces the uninterrupted one bitwise (tested).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import paramax

from ..errors import InputError
from ..io import atomic_path, atomic_write_json
from .data import load_pairs, split_indices, x_statistics
from .flow import ConditionalFlow, FlowConfig, box_to_unbounded, build_flow, x_features

__all__ = ["TrainConfig", "train", "make_flow", "load_checkpoint_flow", "make_optimizer", "trainable_partition",
           "train_step"]

VAL_CHUNK = 8192  # rows per compiled validation call (last chunk padded + masked)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (saved with the model).

    Attributes:
        batch_size: rows per step (the last partial batch of each reshuffled epoch is dropped).
        learning_rate: peak Adam learning rate (SEDflow: 5e-4 at batch 50).
        schedule: ``"constant"`` or ``"cosine"`` (decay to ``lr_final_fraction`` x peak over ``max_epochs``).
        lr_final_fraction: final learning rate as a fraction of the peak (cosine only).
        max_epochs: epoch cap; patience: stop after this many epochs without a better validation loss.
        clip_norm: global gradient-norm clip (sbi default 5).
        val_fraction: validation fraction (0.1 as sbi).
        seed: flow initialisation, split and shuffling.
        max_rows: use at most this many valid training-set rows (None: all).
        max_seconds: stop (keeping the best state) once an epoch ends past this wall time.
    """

    batch_size: int = 2048
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    lr_final_fraction: float = 0.02
    max_epochs: int = 40
    patience: int = 6
    clip_norm: float = 5.0
    val_fraction: float = 0.1
    seed: int = 0
    max_rows: int | None = None
    max_seconds: float | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


def make_flow(key, flow_config: FlowConfig, x_mean, x_std, low, high) -> ConditionalFlow:
    return ConditionalFlow(build_flow(key, flow_config), jnp.asarray(x_mean), jnp.asarray(x_std),
                           jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32), flow_config)


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    if cfg.schedule == "constant":
        lr = cfg.learning_rate
    elif cfg.schedule == "cosine":
        lr = optax.cosine_decay_schedule(cfg.learning_rate, max(1, cfg.max_epochs * steps_per_epoch), cfg.lr_final_fraction)
    else:
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {cfg.schedule!r}")
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), optax.adam(lr))


def trainable_partition(flow: ConditionalFlow):
    """``(params, static)`` of the flow's MAF: only its weights are trained (x standardisation and the
    box are fixed). ``eqx.combine(params, static)`` is the MAF again."""
    is_nt = lambda leaf: isinstance(leaf, paramax.NonTrainable)  # noqa: E731
    params, static = eqx.partition(flow.flow, eqx.is_inexact_array, is_leaf=is_nt)
    return params, static


def _nll(params, static, y, xs, mask):
    dist = paramax.unwrap(eqx.combine(params, static))
    lp = dist.log_prob(y, xs)
    return -jnp.sum(jnp.where(mask, lp, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


@eqx.filter_jit
def train_step(params, static, opt_state, optimizer, y, xs):
    """One Adam step on a fixed-shape batch; non-finite loss or gradients skip the update (NaN guard).

    Args:
        params, static: from :func:`trainable_partition`; ``opt_state`` from ``optimizer.init(params)``
            with ``optimizer`` from :func:`make_optimizer`.
        y: ``(batch, 11)`` unbounded flow coordinates; xs: ``(batch, 11)`` standardised x features.

    Returns:
        ``(params, opt_state, loss, ok)``: ``ok`` is False when the step was skipped.
    """
    mask = jnp.ones(y.shape[0], bool)
    loss, grads = eqx.filter_value_and_grad(_nll)(params, static, y, xs, mask)
    updates, new_state = optimizer.update(grads, opt_state, params)
    new_params = eqx.apply_updates(params, updates)
    ok = jnp.isfinite(loss) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)]))
    pick = lambda a, b: jax.tree_util.tree_map(lambda p, q: jnp.where(ok, p, q), a, b)  # noqa: E731
    return pick(new_params, params), pick(new_state, opt_state), loss, ok


@eqx.filter_jit
def _val_chunk(params, static, y, xs, mask):
    dist = paramax.unwrap(eqx.combine(params, static))
    lp = dist.log_prob(y, xs)
    return jnp.sum(jnp.where(mask, lp, 0.0))


def _val_loss(params, static, y, xs) -> float:
    n = y.shape[0]
    total = 0.0
    for s in range(0, n, VAL_CHUNK):
        m = min(VAL_CHUNK, n - s)
        yc = np.zeros((VAL_CHUNK, y.shape[1]), np.float32)
        xc = np.zeros((VAL_CHUNK, xs.shape[1]), np.float32)
        yc[:m], xc[:m] = y[s : s + m], xs[s : s + m]
        total += float(_val_chunk(params, static, yc, xc, np.arange(VAL_CHUNK) < m))
    return -total / n


def _ckpt_paths(out: Path):
    return out / "checkpoint.eqx", out / "checkpoint.json"


def _save_checkpoint(out: Path, state: dict, trees) -> None:
    eqx_path, json_path = _ckpt_paths(out)
    with atomic_path(eqx_path) as tmp:
        eqx.tree_serialise_leaves(tmp, trees)
    atomic_write_json(json_path, state)


def train(
    data,
    out: str | os.PathLike,
    *,
    flow_config: FlowConfig = FlowConfig(),
    train_config: TrainConfig = TrainConfig(),
    resume: bool = False,
    progress: bool = True,
    stop_after_epochs: int | None = None,
    init_flow: ConditionalFlow | None = None,
    log=print,
) -> tuple[ConditionalFlow, dict]:
    """Train q(theta | x) on a training set and write checkpoints into ``out``.

    Args:
        data: path of an HDF5 training set, or a tuple ``(theta_flow (n, 11), x (n, 11))``.
        out: directory for ``checkpoint.eqx``/``checkpoint.json`` (written atomically each epoch).
        flow_config, train_config: architecture and training settings.
        resume: continue from the checkpoint in ``out`` (configs must match the saved ones).
        progress: tqdm bar per epoch with the running train loss.
        stop_after_epochs: end this call after that many *total* epochs (for tests / time slicing).
        init_flow: a trained flow to continue from (fine-tuning, e.g. on an SDSS-like subset). Its
            architecture must equal ``flow_config``, and its x standardisation and box are kept, so the
            network's inputs keep their meaning. Its validation loss on the new split is the starting
            best (epoch 0): if no epoch beats it, the returned flow is ``init_flow`` unchanged.

    Returns:
        ``(best_flow, history)``; history has ``train_loss``, ``val_loss``, ``epoch_seconds``,
        ``best_epoch``, ``best_val_loss``, ``n_skipped_steps``, ``stop_reason``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = train_config
    d = _training_arrays(data, cfg, flow_config, init_flow)
    y_tr, x_tr, y_va, x_va = d["y_tr"], d["x_tr"], d["y_va"], d["x_va"]
    steps = y_tr.shape[0] // cfg.batch_size

    key = jr.key(cfg.seed)
    flow = init_flow if init_flow is not None else make_flow(jr.fold_in(key, 0), flow_config, *d["standardisation"])
    params, static = trainable_partition(flow)
    optimizer = make_optimizer(cfg, steps)
    opt_state = optimizer.init(params)
    best_params = params
    hist = {"train_loss": [], "val_loss": [], "epoch_seconds": [], "lr_end": [], "best_epoch": -1,
            "best_val_loss": float("inf"), "n_skipped_steps": 0, "stop_reason": None}
    start_epoch = 0
    ident = _identity(flow_config, cfg, d, None if init_flow is None else _fingerprint(params))
    restored = _restore(out, resume, ident, (params, opt_state, best_params), log)
    if restored is not None:
        (params, opt_state, best_params), hist, start_epoch = restored
    elif init_flow is not None:
        hist["initial_val_loss"] = hist["best_val_loss"] = float(_val_loss(params, static, y_va, x_va))
        hist["best_epoch"] = 0
        log(f"epoch   0  (init_flow)  val {hist['initial_val_loss']:8.4f}")

    t_start = time.perf_counter()
    epoch = start_epoch
    while epoch < cfg.max_epochs:
        early = hist["best_epoch"] >= 0 and epoch - hist["best_epoch"] >= cfg.patience  # a resumed, stopped run
        if early or (stop_after_epochs is not None and epoch >= stop_after_epochs):
            hist["stop_reason"] = "early_stopping" if early else "stop_after_epochs"
            break
        t0 = time.perf_counter()
        params, opt_state, loss_sum, n_bad = _run_epoch(epoch, cfg, (params, static, opt_state, optimizer),
                                                        y_tr, x_tr, progress, hist["val_loss"])
        epoch += 1
        val = _val_loss(params, static, y_va, x_va)
        if _record_epoch(hist, epoch, float(loss_sum), int(n_bad), steps, val, time.perf_counter() - t0, log):
            best_params = params
        _save_checkpoint(out, {"epoch": epoch, "history": hist, "identity": ident}, (params, opt_state, best_params))
        hist["stop_reason"] = _stop_reason(hist, epoch, int(n_bad), steps, cfg, time.perf_counter() - t_start, log)
        if hist["stop_reason"] is not None:
            break
    else:
        hist["stop_reason"] = hist["stop_reason"] or "max_epochs"
    if not np.isfinite(hist["best_val_loss"]):
        raise RuntimeError(f"training diverged ({hist['stop_reason']}): no epoch gave a finite validation loss "
                           f"(train losses {hist['train_loss']}); lower the learning rate or the width")
    best = eqx.tree_at(lambda f: f.flow, flow, eqx.combine(best_params, static))
    return best, hist


def _identity(flow_config: FlowConfig, cfg: TrainConfig, d: dict, init_fingerprint) -> dict:
    """What a checkpoint must match to be resumed (the time/epoch limits may change between calls)."""
    return {"flow_config": flow_config.to_json(),
            "train_config": {k: v for k, v in cfg.to_json().items() if k not in ("max_seconds", "max_epochs")},
            "n_rows": d["n_rows"], "source": d["source"], "init": init_fingerprint}


def _restore(out: Path, resume: bool, ident: dict, trees, log):
    """``(trees, history, epoch)`` from the checkpoint in ``out`` when resuming, else None (a checkpoint
    that exists without ``resume`` is an error: a new run never overwrites one)."""
    eqx_path, json_path = _ckpt_paths(out)
    if resume and json_path.exists():
        state = json.loads(json_path.read_text())
        if state["identity"] != json.loads(json.dumps(ident)):
            raise InputError(f"{json_path}: checkpoint was made with different settings or data; cannot resume")
        trees = eqx.tree_deserialise_leaves(eqx_path, trees)
        log(f"resuming from epoch {state['epoch']} (best val loss {state['history']['best_val_loss']:.4f})")
        return trees, state["history"], state["epoch"]
    if json_path.exists():
        raise FileExistsError(f"{json_path} exists: pass resume (--resume) to continue, or use a new --out")
    return None


def _record_epoch(hist: dict, epoch: int, loss_sum: float, n_bad: int, steps: int, val, seconds: float, log) -> bool:
    """Append the epoch's losses to ``hist`` and log them; True when it is the new best."""
    hist["n_skipped_steps"] += n_bad
    run = loss_sum / max(1, steps - n_bad)  # mean training loss over the epoch's steps
    hist["train_loss"].append(float(run))
    hist["val_loss"].append(float(val))
    hist["epoch_seconds"].append(seconds)
    best = bool(np.isfinite(val) and val < hist["best_val_loss"])
    if best:
        hist["best_val_loss"], hist["best_epoch"] = float(val), epoch
    log(f"epoch {epoch:3d}  train {run:8.4f}  val {val:8.4f}  best {hist['best_val_loss']:8.4f} "
        f"(epoch {hist['best_epoch']})  {seconds:6.1f} s")
    return best


def _stop_reason(hist: dict, epoch: int, n_bad: int, steps: int, cfg: TrainConfig, elapsed: float, log):
    """Why training stops after this epoch (None: go on)."""
    if n_bad == steps:  # every step non-finite: the optimisation has diverged (e.g. too high a learning rate)
        log(f"epoch {epoch}: all {steps} steps gave non-finite losses or gradients; stopping (diverged)")
        return "diverged"
    if epoch - hist["best_epoch"] >= cfg.patience:
        return "early_stopping"
    if cfg.max_seconds is not None and elapsed > cfg.max_seconds:
        return "max_seconds"
    return None


def _training_arrays(data, cfg: TrainConfig, flow_config: FlowConfig, init_flow) -> dict:
    """Finite (theta_flow, x) pairs -> unbounded y and standardised x features, split train/validation."""
    from ..priors.sedflow import SEDFLOW_BOUNDS

    source = str(data) if isinstance(data, (str, os.PathLike)) else "arrays"
    if isinstance(data, (str, os.PathLike)):
        u, x, _ = load_pairs(data, max_rows=cfg.max_rows)
    else:
        u, x = (np.asarray(a, np.float32) for a in data)
        if cfg.max_rows is not None:
            u, x = u[: cfg.max_rows], x[: cfg.max_rows]
    if u.ndim != 2 or u.shape[1] != 11 or x.shape != (u.shape[0], 11):
        raise InputError(f"expected theta_flow (n, 11) and x (n, 11); got {u.shape} and {x.shape}")
    good = np.all(np.isfinite(u), 1) & np.all(np.isfinite(x), 1)
    u, x = u[good], x[good]
    tr, va = split_indices(u.shape[0], cfg.val_fraction, cfg.seed)
    if tr.size < cfg.batch_size:
        raise InputError(f"{tr.size} training rows is fewer than one batch ({cfg.batch_size})")
    feats = np.asarray(x_features(jnp.asarray(x)), np.float32)
    if init_flow is None:
        x_mean, x_std = x_statistics(feats[tr])
        low, high = (np.asarray(b, np.float32) for b in SEDFLOW_BOUNDS)
    else:
        if init_flow.config != flow_config:
            raise ValueError(f"init_flow has architecture {init_flow.config}, but flow_config is {flow_config}")
        x_mean, x_std, low, high = (np.asarray(a, np.float32) for a in
                                    (init_flow.x_mean, init_flow.x_std, init_flow.low, init_flow.high))
    y = np.asarray(box_to_unbounded(jnp.asarray(u), low, high)[0], np.float32)
    xs = ((feats - x_mean) / x_std).astype(np.float32)
    return {"y_tr": y[tr], "x_tr": xs[tr], "y_va": y[va], "x_va": xs[va], "n_rows": int(u.shape[0]),
            "source": source, "standardisation": (x_mean, x_std, low, high)}


def _run_epoch(epoch: int, cfg: TrainConfig, state, y_tr, x_tr, progress: bool, val_losses):
    """One pass over the training rows in the epoch's permutation (a pure function of (seed, epoch)).

    Returns ``(params, opt_state, loss_sum, n_bad)`` (device scalars: summed finite losses, skipped steps).
    """
    from tqdm.auto import tqdm

    params, static, opt_state, optimizer = state
    steps = y_tr.shape[0] // cfg.batch_size
    perm = np.random.default_rng([cfg.seed, epoch]).permutation(y_tr.shape[0])
    loss_sum, n_bad = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}", disable=not progress, mininterval=1.0, leave=False)
    for i in bar:
        b = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        params, opt_state, loss, ok = train_step(params, static, opt_state, optimizer, y_tr[b], x_tr[b])
        loss_sum = loss_sum + jnp.where(ok, loss, 0.0)
        n_bad = n_bad + (~ok).astype(jnp.int32)
        if progress and (i % 100 == 99):
            bar.set_postfix(train=f"{float(loss_sum) / max(1, i + 1 - int(n_bad)):.3f}",
                            val=f"{val_losses[-1]:.3f}" if val_losses else "-")
    bar.close()
    return params, opt_state, loss_sum, n_bad


def _fingerprint(params) -> str:
    """SHA-256 of a parameter tree's leaves: ties a checkpoint to the flow it was fine-tuned from."""
    import hashlib

    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(params):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()


def load_checkpoint_flow(out, flow_config: FlowConfig, train_config: TrainConfig, x_mean, x_std, low, high,
                         which: str = "best") -> ConditionalFlow:
    """Rebuild the flow from ``out/checkpoint.eqx`` (``which`` = ``"best"`` or ``"last"``)."""
    flow = make_flow(jr.fold_in(jr.key(train_config.seed), 0), flow_config, x_mean, x_std, low, high)
    params, static = trainable_partition(flow)
    state = json.loads((Path(out) / "checkpoint.json").read_text())
    steps = max(1, int(state["identity"]["n_rows"] * (1 - train_config.val_fraction)) // train_config.batch_size)
    opt_state = make_optimizer(train_config, steps).init(params)
    p, _, b = eqx.tree_deserialise_leaves(Path(out) / "checkpoint.eqx", (params, opt_state, params))
    return eqx.tree_at(lambda f: f.flow, flow, eqx.combine(b if which == "best" else p, static))
