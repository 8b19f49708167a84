"""Derive the shipped default ANPE model (sedflow_jax/data/default_flow) from scratch.

    python scripts/train_default_flow.py [--work /tmp/anpe] [--ship DIR] [architecture flags]

1. ``sedflow-jax simulate --n N_SIM --seed 0`` (package defaults, no --mag-cut; ~59% valid rows);
2. train (FlowConfig/TrainConfig from the flags below), resumable (re-run the script to continue);
3. copy the model files (not the checkpoint) to ``--ship`` (default: the package's default_flow);
4. unless ``--no-validate``: validate on ``--seed 1`` held-out galaxies with
   docs/figures/make_anpe_figures.py (SBC, p-p, log M* recovery; writes validation_metrics.json).

The same script runs on a CPU or a GPU (JAX picks the device); docs/anpe.md records which one
trained the shipped model and the measured CPU seconds per epoch of the same configuration.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIP = ("flow.eqx", "model.json", "support.npz", "history.json")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/anpe")
    ap.add_argument("--run", default=None, help="training directory (default WORK/default_model)")
    ap.add_argument("--ship", default=str(ROOT / "sedflow_jax" / "data" / "default_flow"))
    ap.add_argument("--n-sim", type=int, default=2_000_000, help="simulated rows (before cuts)")
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--invert", choices=("true", "false"), default="false",
                    help="flowjax invert: false = fast sampling (one pass per layer)")
    ap.add_argument("--transformer", choices=("affine", "rqs"), default="affine")
    ap.add_argument("--knots", type=int, default=8, help="spline knots (rqs)")
    ap.add_argument("--interval", type=float, default=8.0, help="spline half-width (rqs)")
    ap.add_argument("--sim-chunk", type=int, default=16384, help="rows per compiled simulation step")
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop after the epoch that passes this")
    ap.add_argument("--no-validate", action="store_true")
    a = ap.parse_args(argv)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    train_h5, test_h5 = work / f"train_{a.n_sim}.h5", work / "test.h5"
    exe = [sys.executable, "-m", "sedflow_jax.cli.main"]
    if not train_h5.exists():
        subprocess.run(exe + ["simulate", "--n", str(a.n_sim), "--seed", "0", "--chunk", str(a.sim_chunk),
                              "--no-progress", "--out", str(train_h5)], check=True)
    from sedflow_jax.anpe import FlowConfig, TrainConfig, train_posterior

    flow_cfg = FlowConfig(flow_layers=a.layers, nn_width=a.width, nn_depth=a.depth, invert=a.invert == "true",
                          transformer=a.transformer, knots=a.knots, interval=a.interval)
    train_cfg = TrainConfig(batch_size=a.batch, learning_rate=a.lr, max_epochs=a.epochs, patience=a.patience,
                            max_seconds=a.max_seconds)
    run = Path(a.run) if a.run else work / "default_model"
    train_posterior(train_h5, run, flow_config=flow_cfg, train_config=train_cfg, resume=True)
    ship = Path(a.ship)
    ship.mkdir(parents=True, exist_ok=True)
    for f in SHIP:
        shutil.copy2(run / f, ship / f)
    if (run / "training_curve.png").exists() and ship.resolve() != run.resolve():
        shutil.copy2(run / "training_curve.png", ship / "training_curve.png")
    if not a.no_validate:
        if not test_h5.exists():
            subprocess.run(exe + ["simulate", "--n", "4000", "--seed", "1", "--out", str(test_h5)], check=True)
        subprocess.run([sys.executable, str(ROOT / "docs" / "figures" / "make_anpe_figures.py"), "--test",
                        str(test_h5), "--model", str(ship)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
