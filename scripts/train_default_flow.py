"""Derive the shipped ANPE models (sedflow_jax/data/default_flow, sdss_flow) from scratch.

    python scripts/train_default_flow.py [--work /tmp/anpe] [--ship DIR] [architecture flags]
    python scripts/train_default_flow.py --work /tmp/sdss --n-sim 4000000 --sim-seed 3 --mag-cut \
        --init-from sedflow_jax/data/default_flow --lr 3e-4 --epochs 15 --patience 5 \
        --ship sedflow_jax/data/sdss_flow --tag sdss                       # the SDSS-range flow

1. ``sedflow-jax simulate --n N_SIM --seed SIM_SEED [--mag-cut]`` (package defaults otherwise; without
   the cut ~59% of rows are valid, with it ~23%);
2. train (FlowConfig/TrainConfig from the flags below, or fine-tune ``--init-from``, whose architecture
   is then used), resumable (re-run the script to continue);
3. copy the model files (not the checkpoint) to ``--ship`` (default: the package's default_flow);
4. unless ``--no-validate``: validate on ``--seed 1`` held-out galaxies drawn the same way (with
   ``--mag-cut`` when training had it) with docs/figures/make_anpe_figures.py (SBC, p-p, log M*
   recovery, held-out NLL; writes validation_metrics.json).

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
    ap.add_argument("--sim-seed", type=int, default=0, help="seed of the training set (1 is the test set's)")
    ap.add_argument("--mag-cut", action="store_true",
                    help="train and validate on SDSS-range photometry only (simulate --mag-cut)")
    ap.add_argument("--init-from", default=None, help="model directory to fine-tune instead of a new flow")
    ap.add_argument("--tag", default="default", help="figure-name tag of the validation")
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
    if a.sim_seed == 1:
        raise SystemExit("--sim-seed 1 draws the validation set; pick another seed")
    cut = ["--mag-cut"] if a.mag_cut else []
    suffix = f"_seed{a.sim_seed}" * (a.sim_seed != 0) + "_magcut" * a.mag_cut
    train_h5, test_h5 = work / f"train_{a.n_sim}{suffix}.h5", work / f"test{'_magcut' * a.mag_cut}.h5"
    exe = [sys.executable, "-m", "sedflow_jax.cli.main"]
    if not train_h5.exists():
        subprocess.run(exe + ["simulate", "--n", str(a.n_sim), "--seed", str(a.sim_seed), "--chunk",
                              str(a.sim_chunk), "--no-progress", "--out", str(train_h5)] + cut, check=True)
    from sedflow_jax.anpe import FlowConfig, TrainConfig, train_posterior

    flow_cfg = None if a.init_from is not None else FlowConfig(  # None: the fine-tuned model's architecture
        flow_layers=a.layers, nn_width=a.width, nn_depth=a.depth, invert=a.invert == "true",
        transformer=a.transformer, knots=a.knots, interval=a.interval)
    train_cfg = TrainConfig(batch_size=a.batch, learning_rate=a.lr, max_epochs=a.epochs, patience=a.patience,
                            max_seconds=a.max_seconds)
    run = Path(a.run) if a.run else work / "default_model"
    train_posterior(train_h5, run, flow_config=flow_cfg, train_config=train_cfg, resume=True, init_from=a.init_from)
    ship = Path(a.ship)
    ship.mkdir(parents=True, exist_ok=True)
    for f in SHIP:
        shutil.copy2(run / f, ship / f)
    if (run / "training_curve.png").exists() and ship.resolve() != run.resolve():
        shutil.copy2(run / "training_curve.png", ship / "training_curve.png")
    if not a.no_validate:
        if not test_h5.exists():
            # the cut keeps ~23% of draws: 40,000 give ~9,000 valid rows, of which 1,000 are used
            subprocess.run(exe + ["simulate", "--n", "40000" if a.mag_cut else "4000", "--seed", "1", "--out",
                                  str(test_h5)] + cut, check=True)
        subprocess.run([sys.executable, str(ROOT / "docs" / "figures" / "make_anpe_figures.py"), "--test",
                        str(test_h5), "--model", str(ship), "--tag", a.tag], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
