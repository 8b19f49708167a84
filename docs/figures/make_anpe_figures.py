"""Validate a trained ANPE on held-out simulated galaxies; write metrics JSON and docs/figures/anpe_*.png.

    python docs/figures/make_anpe_figures.py --model sedflow_jax/data/default_flow --test /tmp/anpe/test.h5 \
        [--n-gal 1000 --n-samples 1000 --tag default]

Test set: `sedflow-jax simulate --n 4000 --seed 1 --out test.h5` (prior draws, same noise; first n-gal valid rows).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax.numpy as jnp
import jax.random as jr
import numpy as np

from sedflow_jax.anpe import Posterior
from sedflow_jax.validation import coverage_from_ranks, rank_uniformity, sbc_ranks
from sedflow_jax.io import atomic_write_json
from sedflow_jax.params import THETA_NAMES
from sedflow_jax.simulate import load_training_set

FIG = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--test", required=True)
    ap.add_argument("--n-gal", type=int, default=1000)
    ap.add_argument("--n-samples", type=int, default=1000)
    ap.add_argument("--tag", default="default")
    ap.add_argument("--metrics-out", default=None, help="default: MODEL/validation_metrics.json")
    ap.add_argument("--no-figures", action="store_true")
    a = ap.parse_args(argv)
    post = Posterior.load(a.model)
    d = load_training_set(a.test, columns=("theta", "theta_flow", "x"))
    theta, x = d["theta"][: a.n_gal], d["x"][: a.n_gal]
    # held-out E[-log q(theta | x)]: differs between two flows by E[KL(p || q)] differences alone
    nll = -float(np.mean(np.asarray(post.flow.log_prob(jnp.asarray(d["theta_flow"][: a.n_gal]), jnp.asarray(x)))))
    t0 = time.perf_counter()
    s = post.sample(jr.key(123), x, a.n_samples)
    dt = time.perf_counter() - t0
    ranks = sbc_ranks(s, theta, sample_axis=1)  # s: (n_gal, n_samples, 12)
    uni = rank_uniformity(ranks, n_draw=a.n_samples)
    cov = coverage_from_ranks(ranks, levels=np.linspace(0, 1, 101))
    u = {"ks_d": uni.ks_stat, "ks_p": uni.ks_pvalue, "chi2_p": uni.chi2_pvalue, "max_coverage_dev": cov.max_abs_deviation}
    med = np.median(s[:, :, 0], 1)
    lo, hi = np.percentile(s[:, :, 0], [16, 84], axis=1)
    diff = med - theta[:, 0]
    inside = float(np.mean((theta[:, 0] >= lo) & (theta[:, 0] <= hi)))
    metrics = {
        "test_set": str(a.test), "n_gal": int(x.shape[0]), "n_samples": a.n_samples, "sampling_seconds": dt,
        "heldout_neg_log_q": nll,
        "per_parameter": {n: {"ks_d": float(u["ks_d"][j]), "ks_p": float(u["ks_p"][j]),
                              "max_coverage_dev": float(u["max_coverage_dev"][j]), "sbc_chi2_p": float(u["chi2_p"][j])}
                          for j, n in enumerate(THETA_NAMES)},
        "max_coverage_dev_all": float(np.max(u["max_coverage_dev"])),
        "max_ks_d_all": float(np.max(u["ks_d"])),
        "log10_mstar_formed": {"bias": float(np.mean(diff)), "scatter": float(np.std(diff)),
                               "median_abs_err": float(np.median(np.abs(diff))), "frac_in_68": inside},
        "in_box_fraction": float(np.mean(np.all((post.flow.low <= np.asarray(post.sample(jr.key(5), x[:50], 200, physical=False))) &
                                                (np.asarray(post.sample(jr.key(5), x[:50], 200, physical=False)) <= post.flow.high), -1))),
    }
    out = Path(a.metrics_out) if a.metrics_out else Path(a.model or "sedflow_jax/data/default_flow") / "validation_metrics.json"
    atomic_write_json(out, metrics)
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_parameter"}, indent=1))
    for n, m in metrics["per_parameter"].items():
        print(f"{n:20s} KS D {m['ks_d']:.3f} (p {m['ks_p']:.3f})  max cov dev {m['max_coverage_dev']:.3f}  SBC chi2 p {m['sbc_chi2_p']:.3f}")
    if a.no_figures:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(11, 7), sharey=True)
    for j, ax in enumerate(axes.flat):
        ax.hist(ranks[:, j], bins=10, range=(0, 1), density=True, color="C0", alpha=0.7)
        ax.axhline(1, color="k", lw=1)
        ax.set_title(f"{THETA_NAMES[j]}\nKS D={u['ks_d'][j]:.3f}, p={u['ks_p'][j]:.2f}", fontsize=8)
        ax.set_ylim(0, 2)
    fig.suptitle(f"SBC ranks, {x.shape[0]} held-out simulated galaxies x {a.n_samples} samples ({a.tag})")
    fig.tight_layout()
    fig.savefig(FIG / f"anpe_sbc_{a.tag}.png", dpi=100)
    plt.close(fig)
    levels, ecp = cov.levels, cov.coverage
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for j in range(len(THETA_NAMES)):
        axes[0].plot(levels, ecp[:, j], lw=1, label=THETA_NAMES[j])
        xs = np.sort(ranks[:, j])
        axes[1].plot(xs, np.arange(1, xs.size + 1) / xs.size - xs, lw=1)
    axes[0].plot([0, 1], [0, 1], "k--", lw=1)
    axes[0].set_xlabel("credibility level (central interval)")
    axes[0].set_ylabel("empirical coverage")
    axes[0].legend(fontsize=6, ncol=2)
    axes[0].set_title(f"coverage; max |dev| = {np.max(u['max_coverage_dev']):.3f}")
    axes[1].axhspan(-1.36 / np.sqrt(x.shape[0]), 1.36 / np.sqrt(x.shape[0]), color="0.85", label="KS 95% band")
    axes[1].set_xlabel("rank (p-p percentile)")
    axes[1].set_ylabel("ECDF(rank) - rank")
    axes[1].set_title("p-p deviation")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIG / f"anpe_pp_{a.tag}.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    ax.errorbar(theta[:, 0], med, yerr=[med - lo, hi - med], fmt=".", ms=2, lw=0.3, alpha=0.5)
    ax.plot([7, 12.5], [7, 12.5], "k--", lw=1)
    ax.set_xlabel("true log10 M*_formed")
    ax.set_ylabel("posterior median (16-84%)")
    ax.set_title(f"bias {np.mean(diff):+.3f}, scatter {np.std(diff):.3f}, in 68%: {inside:.2f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(FIG / f"anpe_logmstar_{a.tag}.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
