"""Figure for docs/simulation.md: a default training set against the 10,000 real SDSS MGS galaxies.

    .venv/bin/python docs/figures/make_simulation_figure.py /tmp/train_1e6.h5 [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.spatial import cKDTree

from sedflow_jax.photometry import SDSS_LAYOUT
from sedflow_jax.simulate import load_training_set, read_mag_catalogue

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("train")
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--out", default=str(ROOT / "docs" / "figures" / "simulation_training_set.png"))
    args = p.parse_args(argv)
    d = load_training_set(args.train, valid_only=True, columns=["theta", "x"])
    src = Path(args.shared) / "data" / "sdss_mgs"
    mags, errs, zs = [], [], []
    for f in ("SDSS_MGS.train", "SDSS_MGS.test"):
        m, e, z = read_mag_catalogue(src / f, z_col=0)
        mags.append(m), errs.append(e), zs.append(z)
    m_r, e_r, z_r = np.concatenate(mags), np.concatenate(errs), np.concatenate(zs)
    x, th = d["x"], d["theta"]
    m_s, e_s, z_s = SDSS_LAYOUT.mag(x), SDSS_LAYOUT.sigma_mag(x), SDSS_LAYOUT.redshift(x)
    bands = "ugriz"
    fig, ax = plt.subplots(3, 5, figsize=(17, 10))
    for b in range(5):
        a = ax[0, b]
        bins = np.linspace(10, 30, 81)
        a.hist(m_s[:, b], bins, density=True, histtype="stepfilled", alpha=0.4, label=f"simulated ({len(x):,})")
        a.hist(m_r[:, b], bins, density=True, histtype="step", color="k", label="SDSS MGS (10,000)")
        a.set_xlabel(f"{bands[b]} [mag]")
        a.set_yscale("log")
        a = ax[1, b]
        sel = slice(0, 200_000)
        a.hexbin(m_s[sel, b], np.log10(np.clip(e_s[sel, b], 1e-4, None)), gridsize=80, extent=(10, 26, -3.5, 0.5),
                 bins="log", cmap="Blues", mincnt=1)
        a.scatter(m_r[:, b], np.log10(e_r[:, b]), s=1, c="k", alpha=0.3)
        a.set_xlabel(f"{bands[b]} [mag]")
        a.set_ylabel(rf"log10 $\sigma_{bands[b]}$ [mag]")
    ax[0, 0].legend(fontsize=8)
    a = ax[2, 0]
    a.hist(z_s, np.linspace(0, 0.3, 61), density=True, histtype="stepfilled", alpha=0.4)
    a.hist(z_r, np.linspace(0, 0.3, 61), density=True, histtype="step", color="k")
    a.set_xlabel("redshift")
    a = ax[2, 1]
    a.hexbin(m_s[sel, 2], m_s[sel, 1] - m_s[sel, 2], gridsize=80, extent=(10, 26, -0.5, 2.0), bins="log", cmap="Blues", mincnt=1)
    a.scatter(m_r[:, 2], m_r[:, 1] - m_r[:, 2], s=1, c="k", alpha=0.3)
    a.set_xlabel("r [mag]"), a.set_ylabel("g - r")
    a = ax[2, 2]
    a.hexbin(m_s[sel, 1] - m_s[sel, 2], m_s[sel, 0] - m_s[sel, 1], gridsize=80, extent=(-0.5, 2.0, -0.5, 3.5), bins="log", cmap="Blues", mincnt=1)
    a.scatter(m_r[:, 1] - m_r[:, 2], m_r[:, 0] - m_r[:, 1], s=1, c="k", alpha=0.3)
    a.set_xlabel("g - r"), a.set_ylabel("u - g")
    for a, col, name in ((ax[2, 3], 0, r"log$_{10}$ M$_*$ formed"), (ax[2, 4], 10, r"$\tau_{ISM}$")):
        a.hist(th[:, col], 50, density=True, histtype="stepfilled", alpha=0.4)
        a.set_xlabel(name + " (valid rows)")
    # coverage: each real galaxy's simulated neighbours in (u-g, g-r, r-i, i-z, r, 10 z)
    feats = lambda m, z: np.column_stack([m[:, 0] - m[:, 1], m[:, 1] - m[:, 2], m[:, 2] - m[:, 3], m[:, 3] - m[:, 4], m[:, 2], 10 * z])  # noqa: E731
    tree = cKDTree(feats(m_s, z_s))
    radius = 0.1
    cnt = np.array([len(v) for v in tree.query_ball_point(feats(m_r, z_r), radius)])
    cover = {"radius": radius, "space": "(u-g, g-r, r-i, i-z, r, 10 z) in mag, Euclidean",
             "frac_ge1": float(np.mean(cnt >= 1)), "frac_ge10": float(np.mean(cnt >= 10)),
             "median_neighbours": float(np.median(cnt)), "n_valid_rows": int(len(x))}
    fig.suptitle(f"Default training set vs SDSS MGS: {cover['frac_ge10']:.1%} of real galaxies have >= 10 simulated "
                 f"neighbours within {radius} mag (colours, r, 10z)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(json.dumps(cover))


if __name__ == "__main__":
    main()
