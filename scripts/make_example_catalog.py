"""Derive the example catalogue shipped in sedflow_jax/data/example_catalog.csv.

    python scripts/make_example_catalog.py [--out sedflow_jax/data/example_catalog.csv]

200 simulated galaxies (``sedflow-jax simulate --n 400 --seed 2``, first 200 valid rows) written as
magnitudes + errors + redshift with their true parameters, and four deliberately bad rows so that
``sedflow-jax infer`` shows its flags: row 10 (NaN r mag), 50 (negative g error), 90 (z = 0.35, outside
the training range), 150 (NaN u mag, as for a non-positive flux).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BANDS = "ugriz"
N_GAL = 200


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "sedflow_jax" / "data" / "example_catalog.csv"))
    a = ap.parse_args(argv)
    from sedflow_jax.io.atomic import atomic_write_text
    from sedflow_jax.params import THETA_NAMES
    from sedflow_jax.photometry import SDSS_LAYOUT
    from sedflow_jax.simulate.storage import load_training_set

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "example.h5"
        subprocess.run([sys.executable, "-m", "sedflow_jax.cli.main", "simulate", "--n", "400", "--seed", "2",
                        "--out", str(path)], check=True, stdout=subprocess.DEVNULL)
        d = load_training_set(path)
    x = np.asarray(d["x"][:N_GAL], np.float64)  # (ugriz mags, mag errors, z)
    theta = np.asarray(d["theta"][:N_GAL], np.float64)
    mag, sigma_mag = SDSS_LAYOUT.mag(x), SDSS_LAYOUT.sigma_mag(x)  # views into x
    mag[10, BANDS.index("r")] = np.nan
    sigma_mag[50, BANDS.index("g")] = -abs(sigma_mag[50, BANDS.index("g")])
    x[90, SDSS_LAYOUT.redshift_index] = 0.35
    mag[150, BANDS.index("u")] = np.nan
    header = (["id"] + [f"mag_{b}" for b in BANDS] + [f"mag_err_{b}" for b in BANDS] + ["z"]
              + [f"true_{n}" for n in THETA_NAMES])
    lines = [
        f"# {N_GAL} simulated galaxies (sedflow-jax simulate --n 400 --seed 2, first {N_GAL} valid rows) with true parameters;",
        "# rows 10 (NaN r mag), 50 (negative g error), 90 (z=0.35 outside training range), 150 (NaN u mag: non-positive flux) are deliberately bad.",
        ",".join(header),
    ]
    for i in range(N_GAL):
        cols = [str(i)] + [f"{v:.5f}" for v in x[i]] + [f"{v:.6g}" for v in theta[i]]
        lines.append(",".join(cols))
    atomic_write_text(a.out, "\n".join(lines) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
