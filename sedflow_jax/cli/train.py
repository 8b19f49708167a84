"""``sedflow-jax train``: fit the ANPE q(theta | x) on an HDF5 training set."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the amortised posterior (ANPE) on a training set",
                              description="Train a conditional MAF on the valid rows of TRAINING_SET (HDF5 from "
                                          "`sedflow-jax simulate`); writes the model, checkpoints, history and a "
                                          "training-curve plot into --out (a new or empty directory: an existing model "
                                          "is never overwritten). Interrupted runs continue with --resume.")
    p.add_argument("training_set")
    p.add_argument("--out", required=True, help="model directory: new or empty, or with --resume the directory of "
                   "an interrupted run")
    g = p.add_argument_group("architecture")
    g.add_argument("--layers", type=int, default=10)
    g.add_argument("--width", type=int, default=256)
    g.add_argument("--depth", type=int, default=1)
    g.add_argument("--direction", choices=("fast-sample", "fast-density"), default="fast-sample",
                   help="fast-density = flowjax invert=True (sampling sequential over 11 dims), "
                        "fast-sample = invert=False (training density sequential)")
    g.add_argument("--transformer", choices=("affine", "rqs"), default="affine")
    t = p.add_argument_group("training")
    t.add_argument("--batch-size", type=int, default=2048)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--schedule", choices=("cosine", "constant"), default="cosine")
    t.add_argument("--max-epochs", type=int, default=40)
    t.add_argument("--patience", type=int, default=6)
    t.add_argument("--clip-norm", type=float, default=5.0)
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--max-rows", type=int, default=None)
    t.add_argument("--max-seconds", type=float, default=None)
    t.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-from", default=None, metavar="MODEL_DIR",
                   help="fine-tune a saved model (its architecture is used; the architecture flags are ignored)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_train)


def _check_out_dir(out, *, resume: bool) -> None:
    """Refuse an ``--out`` that training would clobber or cannot use, before any data is read.

    A new run needs a new or empty directory (a saved model or checkpoint there is never overwritten);
    ``--resume`` needs the checkpoint an interrupted run left there.
    """
    out = Path(out)
    ckpt = out / "checkpoint.json"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory; give a new directory for the model")
    if resume:
        if not ckpt.is_file():
            raise InputError(f"--out {out}: --resume needs the checkpoint ({ckpt.name}) of an interrupted "
                             f"`sedflow-jax train` there and there is none; drop --resume to start a new run")
        return
    if not out.is_dir():
        return
    if ckpt.is_file():
        raise InputError(f"--out {out} holds a training checkpoint: pass --resume to continue it, or give a new --out")
    if (out / "model.json").is_file():
        raise InputError(f"--out {out} holds a saved model (model.json); training never overwrites one: give a new "
                         f"--out")
    entries = sorted(e.name for e in out.iterdir())
    if entries:
        raise InputError(f"--out {out} is not empty ({len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, "
                         f"e.g. {entries[0]!r}); give a new or empty directory")


def _train(args: argparse.Namespace) -> int:
    _check_out_dir(args.out, resume=args.resume)
    from ..anpe import FlowConfig, TrainConfig, train_posterior
    from ..simulate import check_training_set

    # every chunk read once, so a corrupt one is one line naming file and dataset, not a traceback mid-training
    check_training_set(args.training_set, verify_data=True)
    fc = None if args.init_from is not None else FlowConfig(  # None: the fine-tuned model's architecture
        flow_layers=args.layers, nn_width=args.width, nn_depth=args.depth, invert=args.direction == "fast-density",
        transformer=args.transformer)
    tc = TrainConfig(batch_size=args.batch_size, learning_rate=args.lr, schedule=args.schedule,
                     max_epochs=args.max_epochs, patience=args.patience, clip_norm=args.clip_norm,
                     val_fraction=args.val_fraction, seed=args.seed, max_rows=args.max_rows, max_seconds=args.max_seconds)
    post, hist = train_posterior(args.training_set, args.out, flow_config=fc, train_config=tc, resume=args.resume,
                                 progress=not args.no_progress, init_from=args.init_from)
    print(f"saved {args.out}: best validation loss {hist['best_val_loss']:.4f} at epoch {hist['best_epoch']} "
          f"({hist['stop_reason']}), {sum(hist['epoch_seconds']):.0f} s of training")
    return 0
