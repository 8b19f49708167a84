"""Real-galaxy run: the 10,000 SDSS Main Galaxy Sample galaxies through the shipped default ANPE.

Stages (each cached in ``--work``; rerun a stage with ``--redo STAGE``):

1. ``infer``:   read ``SDSS_MGS.train`` + ``SDSS_MGS.test`` (``_common.read_sdss_mgs_both``:
   :func:`sedflow_jax.io.catalog.read_sdss_mgs`, magnitudes + errors, columns by position), write one combined CSV, and run
   ``sedflow-jax infer CSV --id-col id --n-samples N`` (the shipped default model) in a subprocess. Its wall
   time (including Python/JAX start-up and compilation) is the headline wall time.
2. ``draws``:   for the first ``K`` posterior draws of every valid galaxy: derived properties
   (``properties_batch``), model photometry at the observed redshift (``photometry_batch``; for the
   posterior-predictive check) and, for the first ``K_REST`` draws, rest-frame absolute ugriz magnitudes
   (``ProvabgsModel.rest_frame_absmag``) for the colour-mass diagram.
3. ``analyse``: posterior-predictive check, cheap fallback check and its classification
   (:mod:`sedflow_jax.pipeline.checks`, on the catalogue's photometry), per-galaxy CSV
   (16/50/84 percentiles + flags), headline JSON (``benchmarks/results/real_sdss.json``) and the figures
   ``docs/figures/real_*.png``. See ``docs/real_sdss.md``.

Rows that need the fallback are written to ``fallback_rows.csv``; ``--fallback nuts`` refits them with
NUTS (:func:`run_fallback`, ``--fallback-limit N`` for the first N), as ``sedflow-jax infer --fallback nuts`` does.

    .venv/bin/python benchmarks/real_sdss.py [--shared ../shared] [--work /tmp/real_sdss] [--n-samples 1000] [--k 100]

Big outputs stay in ``--work`` (posteriors.h5 is ~0.5 GB at 1,000 samples; summary.csv ~4 MB): never commit them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import ROOT, SHARED, machine_info, read_sdss_mgs_both

from sedflow_jax.photometry import SDSS_LAYOUT as XL
from sedflow_jax.photometry import flux_to_mag, sigma_flux_to_mag, sigma_mag_to_flux, sigma_to_ivar

BANDS = ("u", "g", "r", "i", "z")
K_REST = 20  # draws per galaxy for rest-frame magnitudes
PPC_P_REJECT = 1e-3  # reject when the posterior-predictive p-value is below this
# NSA's k_minerror floor (sedflow_method.md 4.3), used as a sensitivity variant of the PPC (model systematics)
ERROR_FLOOR_MAG = np.array([0.05, 0.02, 0.02, 0.02, 0.03])
Z_SUN_PROVABGS = 0.019  # PROVABGS's solar-scaled semantics (logzsol = log10(Z / 0.019)), docs/model.md

# ----------------------------------------------------------------------------------------------------
# Published reference relations (all masses in Msun, SFR in Msun/yr)
# ----------------------------------------------------------------------------------------------------


def sfms_speagle14(log_mstar, t_gyr):
    """Speagle et al. 2014, ApJS 214, 15, eq. 28 ("best fit"): log SFR = (0.84 - 0.026 t) log M* - (6.51 - 0.11 t),
    t = age of the universe in Gyr; Kroupa IMF (their common calibration), 0 < z < 6 compilation."""
    return (0.84 - 0.026 * t_gyr) * log_mstar - (6.51 - 0.11 * t_gyr)


def sfms_renzini_peng15(log_mstar):
    """Renzini & Peng 2015, ApJL 801, L29, eq. 1: ridge line of the SDSS DR7 (MPA-JHU) star-forming peak at
    0.02 < z < 0.085: log SFR = 0.76 log M* - 7.64."""
    return 0.76 * log_mstar - 7.64


#: Gallazzi et al. 2005, MNRAS 362, 41, Table 2: stellar mass-metallicity relation of SDSS DR2 galaxies
#: (r-band light-weighted log Z*/Zsun from absorption indices, BC03 models, Chabrier IMF, Zsun = 0.02):
#: log M* bins and the 50th, 16th and 84th percentiles of log(Z*/Zsun).
GALLAZZI05 = {
    "log_mstar": [8.91, 9.11, 9.31, 9.51, 9.72, 9.91, 10.11, 10.31, 10.51, 10.72, 10.91, 11.11, 11.31, 11.51, 11.72, 11.91],
    "p50": [-0.60, -0.61, -0.65, -0.61, -0.52, -0.41, -0.23, -0.11, -0.01, 0.04, 0.07, 0.10, 0.12, 0.13, 0.14, 0.15],
    "p16": [-1.11, -1.07, -1.10, -1.03, -0.97, -0.90, -0.80, -0.65, -0.41, -0.24, -0.14, -0.09, -0.06, -0.04, -0.03, -0.03],
    "p84": [-0.00, -0.00, -0.05, -0.01, 0.05, 0.09, 0.14, 0.17, 0.20, 0.22, 0.24, 0.25, 0.26, 0.28, 0.29, 0.30],
    "zsun": 0.02,
}


def baldry04_divider(abs_mag_r):
    """Baldry et al. 2004, ApJ 600, 681, eq. 11: optimal red/blue divider in rest-frame (u - r) vs M_r,
    C'_ur(M_r) = 2.06 - 0.244 tanh[(M_r + 20.07) / 1.09] (SDSS z < 0.08, k-corrected colours)."""
    return 2.06 - 0.244 * np.tanh((abs_mag_r + 20.07) / 1.09)


# ----------------------------------------------------------------------------------------------------
# Stage 1: catalogue + `sedflow-jax infer`
# ----------------------------------------------------------------------------------------------------


def write_csv(table: dict, path: Path) -> None:
    cols = ["id", "z"] + [f"mag_{b}" for b in BANDS] + [f"mag_err_{b}" for b in BANDS]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for i in range(table["z"].shape[0]):
            w.writerow([table["id"][i]] + [repr(float(table[c][i])) for c in cols[1:]])


def stage_infer(args, work: Path) -> dict:
    table = read_sdss_mgs_both(Path(args.shared), args.limit)
    if args.u_offset:
        table["mag_u"] = table["mag_u"] + args.u_offset  # sensitivity test, e.g. -0.04 = SDSS u -> AB
    cat = work / "sdss_mgs.csv"
    write_csv(table, cat)
    cmd = [str(Path(sys.executable).with_name("sedflow-jax")), "infer", str(cat), "--out", str(work / "posteriors.h5"),
           "--id-col", "id", "--n-samples", str(args.n_samples), "--seed", str(args.seed), "--no-progress"]
    print("running:", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    print(res.stdout, res.stderr[-3000:], sep="\n")
    if res.returncode:
        raise SystemExit(f"sedflow-jax infer failed ({res.returncode})")
    info = {"command": " ".join(cmd[1:]), "wall_s": wall, "stdout": res.stdout.strip(), "n_rows": int(table["z"].size)}
    (work / "infer.json").write_text(json.dumps(info, indent=1))
    return info


# ----------------------------------------------------------------------------------------------------
# Stage 2: model evaluations of posterior draws
# ----------------------------------------------------------------------------------------------------


def stage_draws(args, work: Path) -> dict:
    import h5py

    from sedflow_jax.model import ProvabgsModel, photometry_batch, properties_batch
    from sedflow_jax.model.batch import batched, validate_inputs

    with h5py.File(work / "posteriors.h5", "r") as fh:
        flags = fh["flags"][()]
        x = fh["x"][()]
        valid = np.flatnonzero(np.isfinite(fh["median"][:, 0]))
        k = min(args.k, fh["samples"].shape[1])
        th = fh["samples"][:, :k, :][valid]  # (n_valid, k, 12)
    model = ProvabgsModel.build(z_max=0.2)
    theta = th.reshape(-1, 12).astype(np.float64)
    theta[:, 1:5] /= theta[:, 1:5].sum(1, keepdims=True)  # float32 simplex round-off
    z_valid = XL.redshift(x[valid]).astype(np.float64)
    zz = np.repeat(z_valid, k)
    t = {}
    t0 = time.perf_counter()
    props = properties_batch(model, theta, zz).reshape(valid.size, k, -1)
    t["properties_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    phot = photometry_batch(model, theta, zz).reshape(valid.size, k, -1)
    t["photometry_s"] = time.perf_counter() - t0
    kr = min(K_REST, k)
    th_r = theta.reshape(valid.size, k, 12)[:, :kr].reshape(-1, 12)
    z_r = np.repeat(z_valid, kr)
    validate_inputs(th_r, z_r, z_max=model.z_max)
    t0 = time.perf_counter()
    rest = batched(ProvabgsModel.rest_frame_absmag, model, th_r, z_r, check=False).reshape(valid.size, kr, -1)
    t["restframe_s"] = time.perf_counter() - t0
    t["n_evaluations"] = int(2 * theta.shape[0] + th_r.shape[0])
    with h5py.File(work / "draws.h5", "w") as fh:
        fh["valid_rows"] = valid
        fh["theta"] = th
        fh["properties"] = props.astype(np.float32)
        fh["photometry"] = phot.astype(np.float32)
        fh["rest_absmag"] = rest.astype(np.float32)
        fh.attrs["timing"] = json.dumps(t)
    print("draws:", t, flush=True)
    return t


def stage_control(args, work: Path) -> dict:
    """Simulated twins: the same PPC on mock galaxies matched to the real ones (the control for the PPC).

    For the first ``--n-control`` valid in-support rows: truth = the galaxy's first posterior draw, its model
    fluxes at the galaxy's z (already in draws.h5), Gaussian noise with the galaxy's *observed* sigma_m. The twins
    are inferred with the same flow (``--n-control-samples`` samples; the first K through ``photometry_batch``)
    and checked exactly like the real rows. If the model and the flow were perfect, only ~0.1% would be rejected;
    what the twins reject is the flow's own (amortisation) share of the real-data rejections.
    """
    import h5py
    import jax.random as jr

    from sedflow_jax.anpe import Posterior
    from sedflow_jax.io.catalog import ROW_FLAGS
    from sedflow_jax.model import ProvabgsModel, photometry_batch, properties_batch
    from sedflow_jax.pipeline import posterior_predictive_check

    with h5py.File(work / "posteriors.h5", "r") as fh:
        flags, x = fh["flags"][()], fh["x"][()]
    with h5py.File(work / "draws.h5", "r") as fh:
        valid = fh["valid_rows"][()]
        p0 = fh["properties"][:, 0, :].astype(np.float64)
        th0 = fh["theta"][:, 0, :]
        f0 = fh["photometry"][:, 0, :].astype(np.float64)
    keep = np.flatnonzero((flags[valid] & ROW_FLAGS["outside_support"]) == 0)[: args.n_control]
    rows = valid[keep]
    rng = np.random.default_rng(args.seed + 1)
    s_f = sigma_mag_to_flux(XL.sigma_mag(x[rows]).astype(np.float64), f0[keep])
    f_obs = f0[keep] + s_f * rng.standard_normal(s_f.shape)
    ok = np.all(f_obs > 0, 1)
    rows, keep, f_obs, s_f = rows[ok], keep[ok], f_obs[ok], s_f[ok]
    xt = XL.assemble(flux_to_mag(f_obs), sigma_flux_to_mag(s_f, f_obs), XL.redshift(x[rows]).astype(np.float64))
    xt = xt.astype(np.float32)
    post = Posterior.load(args.model)
    t0 = time.perf_counter()
    samp = post.sample(jr.key(args.seed + 2), xt, args.n_control_samples)
    t_s = time.perf_counter() - t0
    k = min(args.k, samp.shape[1])
    theta = samp[:, :k].reshape(-1, 12).astype(np.float64)
    theta[:, 1:5] /= theta[:, 1:5].sum(1, keepdims=True)
    model = ProvabgsModel.build(z_max=0.2)
    z_t = XL.redshift(xt).astype(np.float64)
    phot = photometry_batch(model, theta, np.repeat(z_t, k)).reshape(len(rows), k, 5)
    truth = th0[keep]
    # can the flow recover the derived properties of the twins? (truth = the real posterior's first draw)
    props = properties_batch(model, theta, np.repeat(z_t, k)).reshape(len(rows), k, 5)
    ptrue = p0[keep]
    ssfr = lambda pp: np.log10(np.maximum(pp[..., 1], 1e-5)) - pp[..., 0]  # noqa: E731
    from scipy.stats import spearmanr

    rec = {}
    for name, fn in (("log_ssfr100", ssfr), ("log_mstar_surv", lambda pp: pp[..., 0]), ("t_mw_gyr", lambda pp: pp[..., 4]),
                     ("log_zmw", lambda pp: np.log10(pp[..., 3]))):
        est, tru = np.median(fn(props), 1), fn(ptrue)
        w = np.percentile(fn(props), 84, 1) - np.percentile(fn(props), 16, 1)
        rec[name] = {"spearman_truth_vs_median": float(spearmanr(tru, est)[0]), "truth_16_84_width": float(np.subtract(*np.percentile(tru, [84, 16]))),
                     "median_posterior_16_84_width": float(np.median(w)),
                     "median_abs_error": float(np.median(np.abs(est - tru)))}
    lo, hi = np.percentile(samp[:, :, 0], [16, 84], axis=1)
    res = {"n": int(len(rows)), "sampling_s": round(t_s, 1), "k": int(k),
           "logM_formed_truth_in_68": float(np.mean((truth[:, 0] >= lo) & (truth[:, 0] <= hi))), "recovery": rec}
    from scipy import stats

    cut = float(stats.chi2.isf(PPC_P_REJECT, 5))
    arrays = {}
    for name, fl in (("", None), ("_floor", ERROR_FLOOR_MAG)):
        r = posterior_predictive_check(f_obs, sigma_to_ivar(s_f), phot, floor_mag=fl)
        arrays.update({f"chi2_j{name}": r["chi2_j"].astype(np.float32), f"p_bayes{name}": r["p_bayes"],
                       f"chi2_best{name}": r["chi2_best"]})
        res["chi2_draw_median" + name] = float(np.median(r["chi2_j"]))
        res["fraction_rejected_p_bayes" + name] = float(np.mean(r["p_bayes"] < PPC_P_REJECT))
        res["fraction_best_fit_chi2_above_cut" + name] = float(np.mean(r["chi2_best"] > cut))
        res["chi2_best_median" + name] = float(np.median(r["chi2_best"]))
        res["chi2_best_p99" + name] = float(np.percentile(r["chi2_best"], 99))
    resid = XL.mag(xt) - flux_to_mag(np.median(phot, 1))
    res["per_band_residual_nmad_mag"] = dict(zip(BANDS, [round(float(v), 4) for v in 1.4826 * np.median(
        np.abs(resid - np.median(resid, 0)), 0)]))
    np.savez(work / "control.npz", **arrays)
    (work / "control.json").write_text(json.dumps(res, indent=1))
    print("control:", res, flush=True)
    return res


# ----------------------------------------------------------------------------------------------------
# Stage 3: checks, fallback classification, catalogue, figures
# ----------------------------------------------------------------------------------------------------


def run_fallback(rows: np.ndarray, photometry, method: str, work: Path, *, limit=None, ids=None,
                 n_samples: int = 1000, seed: int = 0, tag: str = "", zbad: np.ndarray | None = None) -> dict | None:
    """The off-support path. ``method='none'`` only lists the rows (``fallback_rows.csv``).

    ``method='nuts'`` refits the first ``limit`` of ``rows`` (all when ``None``) with NUTS through the package's
    fallback (:func:`sedflow_jax.pipeline.refit_rows`: the catalogue's fluxes and ivar, ``photometry``, collapsed
    sampler, bounded work per galaxy), as ``sedflow-jax infer --fallback nuts`` does. Every finished row is
    checkpointed at once (``fallback_nuts{tag}/row_R.npz``: status, diagnostics, draws if converged; written
    atomically), so an interrupted run resumes where it stopped. ``fallback_nuts{tag}.csv`` is rebuilt from the
    checkpoints (row, id, z, converged, status, wall time, R-hat, ESS, divergent fraction, gradient evaluations,
    NUTS 16/50/84 of log10 M* formed). ``zbad`` (bool per catalogue row, optional): the rows beyond the
    trained redshift range (from :func:`classify_fallback`), counted in the summary.
    """
    if method != "nuts":
        return None
    from sedflow_jax import pipeline
    from sedflow_jax.io import atomic_path

    todo = np.asarray(rows)[: limit if limit is not None else None]
    ckpt = work / f"fallback_nuts{tag}"
    ckpt.mkdir(exist_ok=True)
    path = lambda r: ckpt / f"row_{int(r)}.npz"  # noqa: E731
    left = np.array([r for r in todo if not path(r).exists()], dtype=np.int64)
    print(f"NUTS fallback: {todo.size - left.size} of {todo.size} rows already done, {left.size} to run", flush=True)
    t0 = time.perf_counter()
    for r, smp, status, d in pipeline.refit_rows(left, photometry, n_samples, pipeline.FallbackConfig(seed=seed), ids=ids):
        with atomic_path(path(r)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, samples=np.zeros((0, 12), np.float32) if smp is None else smp, status=status,
                     converged=smp is not None, wall_s=d["wall_s"], max_rhat=d["max_rhat"], min_ess_bulk=d["min_ess_bulk"],
                     divergent_fraction=d["divergent_fraction"], n_grad=d["n_gradient_evals_total"])
        print(f"fallback row {r}: {status}", flush=True)
    out = []
    for r in todo:
        if not path(r).exists():
            continue
        with np.load(path(r)) as c:
            q = np.percentile(c["samples"][:, 0], [16, 50, 84]) if bool(c["converged"]) else [np.nan] * 3
            out.append([int(r), "" if ids is None else ids[r], f"{photometry.redshift[r]:.5f}", bool(c["converged"]), str(c["status"]),
                        f"{float(c['wall_s']):.1f}", f"{float(c['max_rhat']):.4f}", f"{float(c['min_ess_bulk']):.0f}",
                        f"{float(c['divergent_fraction']):.4f}", int(c["n_grad"]), *[f"{v:.4f}" for v in q]])
    with atomic_path(work / f"fallback_nuts{tag}.csv") as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "id", "z", "converged", "status", "wall_s", "max_rhat", "min_ess_bulk", "divergent_fraction",
                    "n_gradient_evals", "log10_mstar_p16", "log10_mstar_p50", "log10_mstar_p84"])
        w.writerows(out)
    walls = np.array([float(o[5]) for o in out])
    return {"n_rows": int(todo.size), "n_refit": len(out), "n_converged": sum(1 for o in out if o[3]),
            "n_redshift_outside_range": None if zbad is None else sum(1 for o in out if zbad[o[0]]),
            "wall_s_median": float(np.median(walls)) if out else None, "wall_s_max": float(np.max(walls)) if out else None,
            "seconds_this_run": time.perf_counter() - t0}


def _write_summary_csv(path, ids, x, flags, reasons, score, theta_q, derived_q, extra):
    from sedflow_jax.params import THETA_NAMES

    q = ("p16", "p50", "p84")
    cols = ["row", "id", "z"] + [f"mag_{b}" for b in BANDS] + ["flags", "flag_reason", "support_score"]
    cols += [f"{n}_{s}" for n in ("log10_mstar_formed", "tau_bc", "tau_ism", "dust_index") for s in q]
    cols += [f"{n}_{s}" for n in ("log10_mstar_surv", "sfr_100myr", "sfr_1gyr", "zmet_mw", "t_mw_gyr") for s in q]
    cols += list(extra)
    ti = [THETA_NAMES.index(n) for n in ("log10_mstar_formed", "tau_bc", "tau_ism", "dust_index")]

    def fmt(v):
        if isinstance(v, (str, np.str_)):
            return str(v)
        if isinstance(v, (bool, np.bool_)):
            return str(int(v))
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        return "" if not np.isfinite(v) else f"{float(v):.5g}"

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        z, mag = XL.redshift(x), XL.mag(x)
        for i in range(x.shape[0]):
            row = [i, ids[i], z[i], *mag[i], int(flags[i]), reasons[i], score[i]]
            row += [theta_q[s][i, j] for j in ti for s in range(3)]
            row += [derived_q[s][i, j] for j in range(5) for s in range(3)]
            row += [extra[c][i] for c in extra]
            w.writerow([fmt(v) for v in row])


def prior_reference(seed: int, n: int = 4000) -> dict:
    """Derived properties of SEDflow prior draws at z = 0.1 (what a posterior reverts to when the data do not constrain it)."""
    import jax.random as jr

    from sedflow_jax.model import ProvabgsModel, properties_batch
    from sedflow_jax.priors.sedflow import sedflow_prior

    th = np.asarray(sedflow_prior().sample(jr.key(seed + 3), n), np.float64)
    th[:, 1:5] /= th[:, 1:5].sum(1, keepdims=True)
    p = properties_batch(ProvabgsModel.build(z_max=0.2), th, np.full(n, 0.1))
    ss = np.log10(np.maximum(p[:, 1], 1e-5)) - p[:, 0]
    q = lambda a: [float(v) for v in np.percentile(a, [16, 50, 84])]  # noqa: E731
    return {"n": n, "log_ssfr100_16_50_84": q(ss), "t_mw_gyr_16_50_84": q(p[:, 4]),
            "log_zmw_over_0.019_16_50_84": q(np.log10(p[:, 3] / Z_SUN_PROVABGS))}


def stage_analyse(args, work: Path) -> dict:
    import h5py
    from astropy.cosmology import Planck13
    from scipy import stats

    from sedflow_jax.anpe import Posterior
    from sedflow_jax.io.catalog import ROW_FLAGS, CatalogColumns, read_catalogue
    from sedflow_jax.pipeline import classify_fallback, posterior_predictive_check, training_colour_range
    from sedflow_jax.simulate.noise import load_noise_model

    info = json.loads((work / "infer.json").read_text())
    control = json.loads((work / "control.json").read_text())
    with h5py.File(work / "posteriors.h5", "r") as fh:
        flags, x, score = fh["flags"][()], fh["x"][()], fh["support_score"][()]
        reasons = [r.decode() if isinstance(r, bytes) else str(r) for r in fh["flag_reason"][()]]
        ids = [r.decode() if isinstance(r, bytes) else str(r) for r in fh["id"][()]]
        med, p16, p84 = fh["median"][()], fh["p16"][()], fh["p84"][()]
    with h5py.File(work / "draws.h5", "r") as fh:
        valid = fh["valid_rows"][()]
        props, phot, rest = fh["properties"][()], fh["photometry"][()], fh["rest_absmag"][()]
        timing = json.loads(fh.attrs["timing"])
    n = x.shape[0]
    k = phot.shape[1]
    # the catalogue's photometry as read (float64 fluxes and ivar from its magnitudes): the flux-space checks use it
    photometry = read_catalogue(work / "sdss_mgs.csv", CatalogColumns(id="id")).photometry
    obs = photometry.rows(valid)

    # --- posterior-predictive check (valid rows) ---
    chi2_cut = float(stats.chi2.isf(PPC_P_REJECT, 5))
    full = lambda: np.full(n, np.nan)  # noqa: E731
    res = posterior_predictive_check(obs.flux_nmgy, obs.ivar, phot)
    res_floor = posterior_predictive_check(obs.flux_nmgy, obs.ivar, phot, floor_mag=ERROR_FLOOR_MAG)
    cols = {}
    for name, r in (("", res), ("_floor", res_floor)):
        for key in ("chi2_best", "chi2_ppc", "p_ppc", "p_bayes"):
            a = full()
            a[valid] = r[key]
            cols[key + name] = a

    # --- fallback classification ---
    post = Posterior.load(args.model)
    lo, hi = training_colour_range(post)
    noise = load_noise_model()
    fb = classify_fallback(x, flags, cols["chi2_best"], lo, hi, noise, chi2_cut=chi2_cut)
    # the same check with NSA's error floor: the paper's NSA photometry had that floor built in (method 4.3)
    fb_floor = classify_fallback(x, flags, cols["chi2_best_floor"], lo, hi, noise, chi2_cut=chi2_cut)
    from sedflow_jax.io import atomic_path

    # the fallback rows of the chosen error definition: rows in the trained redshift range first, then the z > 0.2 rows
    floor = args.fallback_errors == "floor"
    fb_sel = fb_floor if floor else fb
    rows = np.flatnonzero(fb_sel["need"])
    rows = rows[np.argsort(fb_sel["zbad"][rows], kind="stable")]
    chi2_sel = cols["chi2_best_floor" if floor else "chi2_best"]
    with atomic_path(work / "fallback_rows.csv") as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "id", "z", "trigger", "why", "support_score", "chi2_best", "errors"])
        for i in rows:
            w.writerow([i, ids[i], f"{photometry.redshift[i]:.5f}", fb_sel["trigger"][i], fb_sel["why"][i], f"{score[i]:.3f}",
                        f"{chi2_sel[i]:.4g}", args.fallback_errors])
    # fit with the errors the rows were selected with (NSA's floor in quadrature, or the quoted ones)
    phot_fit = photometry.with_error_floor(ERROR_FLOOR_MAG) if floor else photometry
    fb_run = run_fallback(rows, phot_fit, args.fallback, work, limit=args.fallback_limit, ids=ids, seed=args.seed,
                          tag="_floor" if floor else "", zbad=fb_sel["zbad"])
    if fb_run:
        print(f"NUTS fallback ({args.fallback_errors} errors): {fb_run['n_refit']} of {fb_run['n_rows']} rows refit, "
              f"{fb_run['n_converged']} converged; median {fb_run['wall_s_median']} s, max {fb_run['wall_s_max']} s "
              f"per galaxy (fallback_nuts{'_floor' if floor else ''}.csv)")

    # --- derived summaries + rest-frame colours ---
    dq = [np.full((n, 5), np.nan, np.float32) for _ in range(3)]
    pq = np.percentile(props, [16, 50, 84], axis=1)
    for s in range(3):
        dq[s][valid] = pq[s]
    absmag = np.full((n, 5), np.nan)
    absmag[valid] = np.median(rest, 1)
    ur0 = absmag[:, 0] - absmag[:, 2]
    mr0 = absmag[:, 2]
    extra = {"chi2_best": cols["chi2_best"], "chi2_ppc": cols["chi2_ppc"], "p_ppc": cols["p_ppc"], "p_bayes": cols["p_bayes"],
             "ppc_reject": (cols["p_bayes"] < PPC_P_REJECT), "p_bayes_floor": cols["p_bayes_floor"],
             "ppc_reject_floor": (cols["p_bayes_floor"] < PPC_P_REJECT),
             "needs_fallback": fb["need"], "needs_fallback_floor": fb_floor["need"], "fallback_trigger": fb["trigger"], "fallback_why": fb["why"],
             "restframe_u_minus_r": ur0, "abs_mag_r": mr0}
    _write_summary_csv(work / "summary.csv", ids, x, flags, reasons, score, (p16, med, p84), (dq[0], dq[1], dq[2]), extra)

    # --- headline numbers ---
    resid = XL.mag(x[valid]) - flux_to_mag(np.median(phot, 1))
    clean = valid[(flags[valid] & ROW_FLAGS["outside_support"]) == 0]
    vmask = np.zeros(n, bool)
    vmask[valid] = True
    cnt = lambda m: int(np.sum(m))  # noqa: E731
    flag_counts = {name: cnt((flags & bit) != 0) for name, bit in ROW_FLAGS.items()}
    t01 = float(Planck13.age(0.1).value)
    lm, lsfr = dq[1][:, 0], np.log10(np.maximum(dq[1][:, 1], 1e-5))
    zmw = np.log10(dq[1][:, 3] / Z_SUN_PROVABGS)
    red = ur0 > baldry04_divider(mr0)
    sel = np.zeros(n, bool)
    sel[clean] = True
    sf = sel & ~red & (dq[1][:, 1] > 0)
    comparisons = {}
    for m0 in (9.5, 10.0, 10.5, 11.0):
        b = sf & (np.abs(lm - m0) < 0.125)
        comparisons[f"sfms_at_{m0}"] = {
            "n_blue": cnt(b), "median_log_sfr100_blue": float(np.median(lsfr[b])) if b.any() else None,
            "speagle14_z0.1": float(sfms_speagle14(m0, t01)), "renzini_peng15": float(sfms_renzini_peng15(m0))}
    g = np.array(GALLAZZI05["log_mstar"])
    mzr = []
    for m0, p50 in zip(g, GALLAZZI05["p50"]):
        b = sel & (np.abs(lm - m0) < 0.1)
        # our Z in units of 0.019 (PROVABGS) vs Gallazzi's 0.02: shift by log10(0.019/0.02) = -0.022
        mzr.append({"log_mstar": float(m0), "n": cnt(b), "ours_median_log_z_over_zsun": float(np.median(zmw[b])) if b.sum() >= 10 else None,
                    "gallazzi05_p50": p50})
    bins_cm = {}
    for m0 in (9.5, 10.0, 10.5, 11.0):
        b = sel & (np.abs(lm - m0) < 0.25)
        bins_cm[str(m0)] = {"n": cnt(b), "red_fraction_baldry04": float(np.mean(red[b])) if b.any() else None}
    prior_ref = prior_reference(args.seed)
    ssfr = np.log10(np.maximum(dq[1][:, 1], 1e-5)) - dq[1][:, 0]
    widths = {"log_mstar_formed": float(np.nanmedian(p84[:, 0] - p16[:, 0])),
              "log_mstar_surv": float(np.nanmedian(dq[2][:, 0] - dq[0][:, 0])),
              "log_sfr100": float(np.nanmedian(np.log10(np.maximum(dq[2][:, 1], 1e-5)) - np.log10(np.maximum(dq[0][:, 1], 1e-5)))),
              "t_mw_gyr": float(np.nanmedian(dq[2][:, 4] - dq[0][:, 4])),
              "log_zmw": float(np.nanmedian(np.log10(dq[2][:, 3]) - np.log10(dq[0][:, 3])))}
    ssfr84 = np.log10(np.maximum(dq[2][:, 1], 1e-5)) - dq[1][:, 0]
    ti = 10  # tau_ism column of THETA_NAMES
    popn = {}
    for name, m in (("red", sel & red), ("blue", sel & ~red)):
        popn[name] = {"n": cnt(m), "median_log_ssfr100_p50": float(np.median(ssfr[m])),
                      "fraction_log_ssfr100_p50_below_-11": float(np.mean(ssfr[m] < -11)),
                      "fraction_log_ssfr100_p84_below_-11": float(np.mean(ssfr84[m] < -11)),
                      "median_tau_ism": float(np.median(med[m, ti])), "median_tau_bc": float(np.median(med[m, 9])),
                      "median_t_mw_gyr": float(np.median(dq[1][m, 4])),
                      "median_log_zmw_over_0.019": float(np.median(zmw[m]))}
    summary = {
        "machine": machine_info(),
        "catalogue": "SDSS MGS (MLZ SDSS_MGS.train + .test, 10,000 galaxies), read with sedflow_jax.io.catalog.read_sdss_mgs",
        "model": "shipped default ANPE (sedflow_jax/data/default_flow), BC03/Kroupa SSP table",
        "command": info["command"].replace(str(work), "$WORK"),
        "n_rows_in": info["n_rows"], "n_rows_out": int(n), "n_samples": args.n_samples,
        "wall_s_sedflow_jax_infer": round(info["wall_s"], 1),
        "infer_stdout": info["stdout"].replace(str(work), "$WORK"),
        "derived_draws_per_galaxy": int(k), "restframe_draws_per_galaxy": int(rest.shape[1]),
        "wall_s_model_evaluations": {kk: (round(v, 1) if isinstance(v, float) else v) for kk, v in timing.items()},
        "flag_counts": flag_counts,
        "n_inferred": cnt(vmask), "n_redshift_outside_range": cnt(fb["zbad"]), "n_outside_support": cnt(fb["support"]),
        "chi2_cut_best_fit": round(chi2_cut, 3), "ppc_p_reject": PPC_P_REJECT,
        "fallback": {
            "n_need": cnt(fb["need"]), "fraction_need": cnt(fb["need"]) / n,
            "n_need_excluding_redshift": cnt(fb["need"] & ~fb["zbad"]),
            "fraction_need_excluding_redshift_of_inferred": cnt(fb["need"] & ~fb["zbad"]) / max(1, cnt(vmask)),
            "by_trigger": {t: cnt(fb["trigger"] == t) for t in sorted(set(fb["trigger"][fb["need"]].tolist()))},
            "by_reason_excluding_redshift": {w: cnt((fb["why"] == w) & ~fb["zbad"]) for w in ("noise", "colour", "noise+colour", "neither")},
            "colour_outliers_blue_vs_red_excluding_redshift": {"blue": cnt(fb["need"] & ~fb["zbad"] & fb["colour_blue"]),
                                                              "red": cnt(fb["need"] & ~fb["zbad"] & fb["colour_red"])},
            "all_inferred_rows": {"noise_outliers": cnt(fb["noise_out"] & vmask),
                                  "colour_outliers": cnt((fb["colour_blue"] | fb["colour_red"]) & vmask)},
            "paper_nsa_fraction": 588 / 33884,
            "nuts_run": None if fb_run is None else {"errors": args.fallback_errors, **fb_run},
            "with_error_floor": {
                "n_need_excluding_redshift": cnt(fb_floor["need"] & ~fb_floor["zbad"]),
                "fraction_need_excluding_redshift_of_inferred": cnt(fb_floor["need"] & ~fb_floor["zbad"]) / max(1, cnt(vmask)),
                "by_reason_excluding_redshift": {w: cnt((fb_floor["why"] == w) & ~fb_floor["zbad"])
                                                 for w in ("noise", "colour", "noise+colour", "neither")},
            },
        },
        "ppc": {
            "n_checked": cnt(vmask),
            # per-draw chi2 (observed errors): ~chi2(5) for a perfect model and a calibrated posterior
            "chi2_draw_median": float(np.median(res["chi2_j"])), "chi2_draw_median_floor": float(np.median(res_floor["chi2_j"])),
            "chi2_5_median": float(stats.chi2.median(5)),
            "fraction_draws_chi2_above_cut": float(np.mean(res["chi2_j"] > chi2_cut)), "chi2_5_fraction_above_cut": PPC_P_REJECT,
            # chi2 against the mean model with the draw spread added to the errors: conservative (<< chi2(5) when
            # the posterior spread is as large as the errors), kept for reference
            "chi2_ppc_median": float(np.nanmedian(cols["chi2_ppc"])),
            "chi2_ppc_quantiles_16_50_84_95": [float(v) for v in np.nanpercentile(cols["chi2_ppc"], [16, 50, 84, 95])],
            "chi2_best_quantiles_16_50_84_95": [float(v) for v in np.nanpercentile(cols["chi2_best"], [16, 50, 84, 95])],
            "fraction_rejected_p_bayes": float(np.nanmean(cols["p_bayes"][valid] < PPC_P_REJECT)),
            "fraction_rejected_p_chi2ppc": float(np.nanmean(cols["p_ppc"][valid] < PPC_P_REJECT)),
            "fraction_rejected_p_bayes_in_support": float(np.mean(cols["p_bayes"][clean] < PPC_P_REJECT)),
            "with_error_floor_mag": ERROR_FLOOR_MAG.tolist(),
            "fraction_rejected_p_bayes_floor": float(np.nanmean(cols["p_bayes_floor"][valid] < PPC_P_REJECT)),
            "chi2_ppc_floor_median": float(np.nanmedian(cols["chi2_ppc_floor"])),
            "fraction_best_fit_chi2_above_cut": float(np.nanmean(cols["chi2_best"][valid] > chi2_cut)),
            # excess over the flow's own failures: the cut at the simulated twins' 99th percentile of chi2_best
            "fraction_best_fit_chi2_above_twins_p99": float(np.nanmean(cols["chi2_best"][valid] > control["chi2_best_p99"])),
            "fraction_best_fit_chi2_above_twins_p99_floor": float(np.nanmean(
                cols["chi2_best_floor"][valid] > control["chi2_best_p99_floor"])),
            # observed minus model (median over draws) magnitude, median over galaxies, and its robust spread
            "per_band_median_residual_mag": dict(zip(BANDS, [round(float(v), 4) for v in np.median(resid, 0)])),
            "per_band_residual_nmad_mag": dict(zip(BANDS, [round(float(v), 4) for v in 1.4826 * np.median(
                np.abs(resid - np.median(resid, 0)), 0)])),
            "per_band_median_sigma_obs_mag": dict(zip(BANDS, [round(float(v), 4) for v in np.median(XL.sigma_mag(x[valid]), 0)])),
        },
        "control_simulated_twins": control,
        "physical": {"age_universe_z0.1_gyr_planck13": t01, "sfms": comparisons, "mzr": mzr, "colour_mass": bins_cm,
                     "red_fraction_all_clean": float(np.mean(red[clean])), "red_vs_blue": popn,
                     "posterior_median_16_84_widths": widths, "prior_at_z0.1": prior_ref,
                     "posterior_median_log_ssfr100_percentiles_1_50_99": [float(v) for v in np.nanpercentile(ssfr[clean], [1, 50, 99])]},
    }
    out = Path(args.results)
    out.write_text(json.dumps(summary, indent=1, default=float) + "\n")
    print(json.dumps(summary, indent=1, default=float))
    twins = dict(np.load(work / "control.npz"))
    make_figures(Path(args.figdir), cols, valid, clean, x, dq, ur0, mr0, red, t01, chi2_cut, fb, k,
                 draws=(res["chi2_j"], res_floor["chi2_j"]), twins=twins, prior_ref=prior_ref)
    return summary


def make_figures(figdir, cols, valid, clean, x, dq, ur0, mr0, red, t01, chi2_cut, fb, k, *, draws, twins, prior_ref):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    figdir.mkdir(parents=True, exist_ok=True)
    lm = dq[1][:, 0]
    # PPC
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    bins = np.logspace(-2, 5, 70)
    for arr, lab, sty in ((draws[0], "SDSS, observed errors", "C0-"), (draws[1], "SDSS, + NSA error floor", "C1-"),
                          (twins["chi2_j"], "simulated twins, observed errors", "C0:"),
                          (twins["chi2_j_floor"], "simulated twins, + floor", "C1:")):
        h, e = np.histogram(np.ravel(arr), bins, density=True)
        ax[0].step(e[:-1], h, sty[:2], where="post", ls=sty[2:], label=lab)
    xx = np.logspace(-2, 5, 400)
    ax[0].plot(xx, stats.chi2.pdf(xx, 5), "k--", label=r"$\chi^2(5)$")
    ax[0].set(xscale="log", yscale="log", xlabel=r"$\chi^2$ of one posterior draw's ugriz vs observed", ylabel="density",
              title=f"per-draw $\\chi^2$ ({k} draws/galaxy)", ylim=(1e-7, 1))
    ax[0].legend(fontsize=7)
    for arr, lab, sty in ((cols["p_bayes"][valid], "SDSS, observed errors", "C0-"), (cols["p_bayes_floor"][valid], "SDSS, + floor", "C1-"),
                          (twins["p_bayes"], "twins, observed errors", "C0:"), (twins["p_bayes_floor"], "twins, + floor", "C1:")):
        p = np.sort(arr)
        ax[1].plot(p, np.arange(1, p.size + 1) / p.size, sty[:2], ls=sty[2:], label=lab)
    ax[1].plot([1e-6, 1], [1e-6, 1], "k--", lw=0.8, label="uniform (for scale)")
    ax[1].axvline(PPC_P_REJECT, color="r", lw=0.8)
    ax[1].set(xscale="log", yscale="log", xlabel="posterior-predictive p-value", ylabel="cumulative fraction of galaxies",
              xlim=(1e-6, 1), ylim=(1e-4, 1.05), title=f"rejected: p < {PPC_P_REJECT:g} (red line)")
    ax[1].legend(fontsize=7)
    for arr, lab, sty in ((cols["chi2_best"][valid], "SDSS", "C0-"), (cols["chi2_best_floor"][valid], "SDSS + floor", "C1-"),
                          (twins["chi2_best"], "twins", "C0:"), (twins["chi2_best_floor"], "twins + floor", "C1:")):
        h, e = np.histogram(arr, bins, density=True)
        ax[2].step(e[:-1], h, sty[:2], where="post", ls=sty[2:], label=lab)
    ax[2].axvline(chi2_cut, color="r", lw=0.8, label=f"cut {chi2_cut:.1f} ($\\chi^2(5)$, p=1e-3)")
    ax[2].set(xscale="log", yscale="log", xlabel=r"best-fit $\chi^2$ (min over draws)", ylabel="density", ylim=(1e-6, 10),
              title="cheap fallback check")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figdir / "real_ppc.png", dpi=110)
    plt.close(fig)

    sel = np.zeros(x.shape[0], bool)
    sel[clean] = True
    ms = np.linspace(8.5, 11.8, 50)
    # SFMS
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.5))
    for a, (j, lab) in zip(ax, ((1, "SFR 100 Myr"), (2, "SFR 1 Gyr"))):
        ls = np.log10(np.maximum(dq[1][:, j], 1e-4))
        a.scatter(lm[sel & ~red], ls[sel & ~red], s=1, alpha=0.3, c="C0", label="blue (Baldry+04 divider)")
        a.scatter(lm[sel & red], ls[sel & red], s=1, alpha=0.3, c="C3", label="red")
        a.plot(ms, sfms_speagle14(ms, t01), "k-", label=f"Speagle+14 (t={t01:.2f} Gyr, z=0.1)")
        a.plot(ms, sfms_renzini_peng15(ms), "k--", label="Renzini & Peng 2015")
        a.plot(ms, ms + prior_ref["log_ssfr100_16_50_84"][1], "g:", label="prior median sSFR$_{100}$ (z=0.1)")
        a.set(xlabel=r"posterior median log $M_{\rm surv}$ [M$_\odot$]", ylabel=f"log {lab} [M$_\\odot$/yr]", xlim=(8.5, 12), ylim=(-4.2, 2))
        a.legend(fontsize=7, markerscale=8)
    fig.tight_layout()
    fig.savefig(figdir / "real_sfms.png", dpi=110)
    plt.close(fig)
    # MZR
    fig, ax = plt.subplots(figsize=(6, 4.5))
    zmw = np.log10(dq[1][:, 3] / Z_SUN_PROVABGS)
    ax.scatter(lm[sel], zmw[sel], s=1, alpha=0.2, c="0.5", label="posterior medians (Z / 0.019)")
    edges = np.arange(8.8, 12.01, 0.2)
    mid, medz = [], []
    for a0, a1 in zip(edges[:-1], edges[1:]):
        b = sel & (lm >= a0) & (lm < a1)
        if b.sum() >= 20:
            mid.append(0.5 * (a0 + a1))
            medz.append(np.median(zmw[b]))
    ax.plot(mid, medz, "C0o-", label="binned median (this run)")
    g = GALLAZZI05
    ax.plot(g["log_mstar"], g["p50"], "k-", label="Gallazzi+05 median (light-wtd, Z/0.02)")
    ax.fill_between(g["log_mstar"], g["p16"], g["p84"], color="k", alpha=0.12, label="Gallazzi+05 16-84%")
    ax.axhline(prior_ref["log_zmw_over_0.019_16_50_84"][1], color="g", ls=":", label="prior median $Z_{MW}$ (z=0.1)")
    ax.set(xlabel=r"posterior median log $M_{\rm surv}$", ylabel=r"log $Z_{\rm MW}/Z_\odot$", xlim=(8.5, 12), ylim=(-2.7, 0.6))
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(figdir / "real_mzr.png", dpi=110)
    plt.close(fig)
    # colour-mass / colour-magnitude
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.5))
    ax[0].scatter(mr0[sel & ~red], ur0[sel & ~red], s=1, alpha=0.3, c="C0")
    ax[0].scatter(mr0[sel & red], ur0[sel & red], s=1, alpha=0.3, c="C3")
    mm = np.linspace(-24, -16, 100)
    ax[0].plot(mm, baldry04_divider(mm), "k-", label="Baldry+04 eq. 11 divider")
    ax[0].set(xlabel=r"rest-frame $M_r$ (posterior model SED)", ylabel=r"rest-frame $u-r$", xlim=(-16, -24), ylim=(0.5, 3.5))
    ax[0].legend(fontsize=7)
    ax[1].scatter(lm[sel & ~red], ur0[sel & ~red], s=1, alpha=0.3, c="C0", label="blue")
    ax[1].scatter(lm[sel & red], ur0[sel & red], s=1, alpha=0.3, c="C3", label="red")
    ax[1].set(xlabel=r"posterior median log $M_{\rm surv}$", ylabel=r"rest-frame $u-r$", xlim=(8.5, 12), ylim=(0.5, 3.5))
    ax[1].legend(fontsize=7, markerscale=8)
    fig.tight_layout()
    fig.savefig(figdir / "real_colour_mass.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", default=str(SHARED))
    p.add_argument("--work", default="/tmp/real_sdss")
    p.add_argument("--model", default=None, help="ANPE model directory (default: shipped)")
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--k", type=int, default=100, help="posterior draws per galaxy for model evaluations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fallback", choices=("none", "nuts"), default="none")
    p.add_argument("--fallback-limit", type=int, default=None, help="refit at most this many fallback rows with NUTS")
    p.add_argument("--fallback-errors", choices=("floor", "quoted"), default="floor",
                   help="select and fit the fallback rows with NSA's error floor in quadrature (default) or the quoted errors")
    p.add_argument("--limit", type=int, default=None, help="smoke test: first LIMIT//2 rows of each file")
    p.add_argument("--u-offset", type=float, default=0.0, help="add this to u before inference (AB-offset test)")
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "real_sdss.json"))
    p.add_argument("--figdir", default=str(ROOT / "docs" / "figures"))
    p.add_argument("--redo", nargs="*", default=[], choices=("infer", "draws", "control", "analyse"))
    p.add_argument("--n-control", type=int, default=2000, help="simulated twins for the PPC control")
    p.add_argument("--n-control-samples", type=int, default=200)
    args = p.parse_args(argv)
    if args.fallback == "nuts":
        from sedflow_jax.host_devices import expose_cpu_cores

        expose_cpu_cores(min_devices=4)  # before JAX starts: a device per NUTS chain (4 chains)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if "infer" in args.redo or not (work / "infer.json").exists():
        stage_infer(args, work)
    if "infer" in args.redo or "draws" in args.redo or not (work / "draws.h5").exists():
        stage_draws(args, work)
    if "control" in args.redo or not (work / "control.json").exists():
        stage_control(args, work)
    stage_analyse(args, work)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("XLA_FLAGS", "")
    raise SystemExit(main())
