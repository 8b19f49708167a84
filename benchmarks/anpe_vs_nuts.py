"""ANPE (shipped model) vs NUTS on simulated SDSS-like galaxies: speed and agreement.

Selects simulated galaxies with known truth exactly as ``benchmarks/nuts_recovery.py`` does
(unflagged, noiseless r < 17.77, 0.02 < z < 0.2), runs NUTS on each (wall time, gradient
evaluations, strict convergence verdict), then draws from the shipped ANPE model as many samples
as NUTS's effective sample size (the smallest bulk ESS over parameters) and times that. Agreement
is measured with NUTS as the reference: W1/sigma per parameter and C2ST, on a fixed number of
ANPE draws (``--n-compare``) so the metric is not dominated by a tiny ESS.

ANPE-IS (``sedflow_jax.anpe.importance``) is measured beside the raw flow: ``--is-proposal`` flow
draws per galaxy reweighted by the exact posterior, with PSIS k-hat and ESS; its agreement with
NUTS is reported over all galaxies and over those where the reweighting is reliable.
``--nuts-cache DIR`` keeps each galaxy's NUTS draws and diagnostics (keyed by the NUTS settings),
so another flow (``--model``) is compared against the same reference without rerunning NUTS.

Writes ``<out>/anpe_vs_nuts.json`` (records ``nuts_seconds_per_galaxy``, ``anpe_seconds_per_galaxy``,
``speedup``, ``wasserstein_over_sigma`` with params ``parameter``, ``device``, ``nuts_converged``)
and ``<out>/anpe_vs_nuts.png``.

    python benchmarks/anpe_vs_nuts.py --n-gal 20        # default NUTS config (long on 2 CPUs)
    python benchmarks/anpe_vs_nuts.py --quick           # 2 galaxies, short chains (< 90 s on 2 CPUs)
    python benchmarks/anpe_vs_nuts.py --n-gal 20 --nuts-cache /tmp/nuts_ref --model DIR   # new flow, same NUTS
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from sedflow_jax.host_devices import expose_cpu_cores

expose_cpu_cores(min_devices=4)  # before JAX starts: a device per chain (4 chains)
import jax  # noqa: E402
import numpy as np  # noqa: E402
from _common import write_results  # noqa: E402
from _nuts_common import (add_anpe_is_arguments, add_nuts_arguments, cached_nuts, is_record, is_summary,  # noqa: E402
                          nuts_config_from_args, nuts_signature, pipeline_records, select_galaxies)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_nuts_arguments(p)
    p.add_argument("--n-compare", type=int, default=2000, help="ANPE draws used for the agreement metrics")
    p.add_argument("--classifier", default="mlp", choices=("mlp", "gbt", "rf"), help="C2ST classifier")
    p.add_argument("--quick", action="store_true",
                   help="2 galaxies, 2 chains x (100 + 100), tree depth 8, gbt C2ST (smoke test)")
    add_anpe_is_arguments(p)
    p.add_argument("--tag", default="", help="suffix of the output file names")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)
    if args.quick:
        args.n_gal, args.num_chains, args.num_warmup, args.num_samples = 2, 2, 100, 100  # no extensions
        args.max_tree_depth, args.classifier, args.n_compare = 8, "gbt", 1000
        args.is_proposal = min(args.is_proposal, 16384)

    from sedflow_jax.anpe import Posterior
    from sedflow_jax.io.atomic import atomic_path
    from sedflow_jax.mcmc import CompiledRuns, NotConvergedWarning, run_nuts
    from sedflow_jax.photometry import flux_to_mag
    from sedflow_jax.params import THETA_NAMES
    from sedflow_jax.validation import c2st, wasserstein_over_sigma

    t_all = time.perf_counter()
    rows, sel, sim = select_galaxies(args.n_gal, args.seed)
    cfg = nuts_config_from_args(args)
    t = time.perf_counter()
    post = Posterior.load(args.model)
    post.sample(jax.random.key(0), rows["x"][sel[0]], 64)  # compile a first shape
    anpe_load_s = time.perf_counter() - t
    device = str(jax.devices()[0])

    def summarise(final: bool):
        nuts_s = np.array([r["nuts_wall_s"] for r in recs])
        anpe_s = np.array([r["anpe_wall_s"] for r in recs])
        nuts_med = float(np.median(nuts_s[1:] if nuts_s.size > 1 else nuts_s))
        anpe_med = float(np.median(anpe_s))
        n_conv = int(sum(r["nuts_converged"] for r in recs))
        W = np.array([[r["wasserstein_over_sigma"][n] for n in THETA_NAMES] for r in recs])
        base = {"device": device, "nuts_converged": n_conv, "n_galaxies": len(recs)}
        records = [
            {"name": "nuts_seconds_per_galaxy", "value": nuts_med, "unit": "s",
             "params": base | {"statistic": "median, excluding the first galaxy (compile)" if nuts_s.size > 1 else "includes compile"}},
            {"name": "anpe_seconds_per_galaxy", "value": anpe_med, "unit": "s",
             "params": base | {"statistic": "median; draws = NUTS min bulk ESS; compiled, model loaded"}},
            {"name": "speedup", "value": nuts_med / anpe_med, "unit": "x", "params": base},
        ] + [{"name": "wasserstein_over_sigma", "value": float(np.median(W[:, j])), "unit": "sigma_NUTS",
              "params": base | {"parameter": n, "method": "anpe", "statistic": "median over galaxies"}}
             for j, n in enumerate(THETA_NAMES)]
        is_fields = {}
        if args.is_proposal:
            ok = [r for r in recs if r["is_reliable"]]
            records += [{"name": "anpe_is_seconds_per_galaxy", "value": float(np.median([r["is_wall_s"] for r in recs])),
                         "unit": "s", "params": base | {"n_proposal": args.is_proposal, "n_pilot": args.is_pilot,
                                                     "statistic": "median"}},
                        {"name": "anpe_is_reliable_fraction", "value": len(ok) / len(recs), "unit": "",
                         "params": base | {"n_proposal": args.is_proposal, "n_pilot": args.is_pilot,
                                           "criterion": "Pareto k <= 0.7, ESS >= 400"}}]
            is_fields = is_summary(recs)
            records += pipeline_records(is_fields, base | {"n_proposal": args.is_proposal, "n_pilot": args.is_pilot})
            records += [{"name": "wasserstein_over_sigma", "value": v, "unit": "sigma_NUTS",
                         "params": base | {"parameter": n, "method": "anpe_is", "n_reliable": len(ok),
                                           "statistic": "median over galaxies where ANPE-IS is reliable"}}
                        for n, v in is_fields.get("anpe_is_wasserstein_over_sigma_reliable", {}).items()]
            is_fields["anpe_is_coverage_68_reliable"] = float(np.mean([r["is_in_68"] for r in ok])) if ok else None
        out = {
            "nuts_config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
            "quick": args.quick, "n_compare": args.n_compare, "c2st_classifier": args.classifier,
            "anpe_load_and_compile_s": anpe_load_s,
            "n_galaxies": len(recs), "nuts_converged": n_conv,
            "c2st_median": float(np.median([r["c2st"] for r in recs])),
            "complete": final,
            "nuts_coverage_68": dict(zip(THETA_NAMES, np.mean([r["nuts_in_68"] for r in recs], 0).round(4).tolist())),
            "nuts_coverage_68_all_params": float(np.mean([r["nuts_in_68"] for r in recs])),
            "anpe_coverage_68_all_params": float(np.mean([r["anpe_in_68"] for r in recs])),
            "coverage_68_binomial_sigma_per_param": float(np.sqrt(0.6827 * 0.3173 / len(recs))),
            "nuts_median_gradient_evals_total": float(np.median([r["nuts_gradient_evals_total"] for r in recs])),
            "nuts_median_wall_s_converged": (float(np.median([r["nuts_wall_s"] for r in recs if r["nuts_converged"]]))
                                             if n_conv else None),
            "model": str(args.model or "shipped default"), **is_fields,
            "galaxies": recs, "total_wall_s": time.perf_counter() - t_all,
            "notes": "NUTS is the reference; an unconverged NUTS run makes the agreement metrics indicative only.",
        }
        dest = Path(args.out)
        dest.mkdir(parents=True, exist_ok=True)
        write_results(dest / f"anpe_vs_nuts{args.tag}.json", records, **out)

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2, 1]})
        xs = np.arange(len(THETA_NAMES))
        for row in W:
            a1.plot(xs - 0.12, row, "o", alpha=0.4, color="C0", ms=4)
        a1.plot(xs - 0.12, np.median(W, 0), "_", color="C0", ms=14, mew=2, label="ANPE (flow), median")
        ok = [r for r in recs if r.get("is_reliable")]
        if ok:
            Wi = np.array([[r["is_wasserstein_over_sigma"][n] for n in THETA_NAMES] for r in ok])
            for row in Wi:
                a1.plot(xs + 0.12, row, "s", alpha=0.4, color="C2", ms=4)
            a1.plot(xs + 0.12, np.median(Wi, 0), "_", color="C2", ms=14, mew=2,
                    label=f"ANPE-IS where reliable ({len(ok)}), median")
        a1.axhline(0.2, color="k", ls=":", lw=1, label="target 0.2")
        a1.set_yscale("log")
        a1.set_xticks(xs, THETA_NAMES, rotation=60, ha="right", fontsize=7)
        a1.set_ylabel("W1 / sigma_NUTS")
        a1.set_title(f"ANPE vs NUTS, {len(recs)} galaxies ({n_conv} NUTS converged)")
        a1.legend(fontsize=7)
        a2.bar(["NUTS", "ANPE"], [nuts_med, anpe_med], color=["C1", "C0"])
        a2.set_yscale("log")
        a2.set_ylabel("seconds per galaxy")
        a2.set_title(f"speed-up {nuts_med / anpe_med:.0f}x ({device})")
        fig.tight_layout()
        with atomic_path(dest / f"anpe_vs_nuts{args.tag}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)  # the summary is redrawn after every galaxy
        print(json.dumps({"nuts_seconds_per_galaxy": nuts_med, "anpe_seconds_per_galaxy": anpe_med,
                          "speedup": nuts_med / anpe_med, "nuts_converged": n_conv, "n_galaxies": len(recs),
                          "total_wall_s": out["total_wall_s"]}))

    cfg_sig = nuts_signature(args.seed, args.n_gal, cfg)
    runs = CompiledRuns()  # one compile for all galaxies

    def nuts_reference(k, i, flux, sig, z, truth):
        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotConvergedWarning)
                return run_nuts(jax.random.fold_in(jax.random.key(args.seed + 1), k), flux, 1.0 / sig**2, float(z),
                                model=sim.model, config=cfg, galaxy_id=str(i), truth=truth, cache=runs)

        return cached_nuts(args.nuts_cache, f"galaxy_{i}", cfg_sig, run)

    def in68(samples, truth):
        lo, hi = np.quantile(samples, [0.16, 0.84], axis=0)
        return ((truth >= lo) & (truth <= hi)).tolist()

    recs = []
    for k, i in enumerate(sel):
        flux, sig, z, truth, x = (rows[c][i] for c in ("flux_obs_nmgy", "sigma_flux_nmgy", "redshift", "theta", "x"))
        nuts, d, converged = nuts_reference(k, i, flux, sig, z, truth)
        n_ess = max(1, int(np.floor(d["min_ess_bulk"])))
        key = jax.random.fold_in(jax.random.key(args.seed + 2), k)
        post.sample(key, x, n_ess)  # compile this sample count (not timed)
        t = time.perf_counter()
        post.sample(key, x, n_ess)
        anpe_s = time.perf_counter() - t
        anpe = post.sample(jax.random.fold_in(key, 1), x, args.n_compare)
        is_rec = {}
        if args.is_proposal:
            is_rec = is_record(jax.random.fold_in(key, 2), post, sim.model, x, nuts, n_proposal=args.is_proposal,
                               n_samples=args.n_compare, n_pilot=args.is_pilot)
            is_rec["is_in_68"] = in68(is_rec.pop("samples"), truth)
        w = wasserstein_over_sigma(anpe, nuts)
        acc = c2st(anpe, nuts, classifier=args.classifier, seed=1)
        recs.append({"row": int(i), "redshift": float(z), "r_true": float(flux_to_mag(rows["flux_nmgy"][i, 2])),
                     "nuts_wall_s": d["wall_s"], "nuts_wall_includes_compile": k == 0,
                     "nuts_gradient_evals_total": d["n_gradient_evals_total"], "nuts_converged": converged,
                     "nuts_max_rhat": d["max_rhat"], "nuts_min_ess_bulk": d["min_ess_bulk"],
                     "nuts_min_ess_tail": d["min_ess_tail"], "nuts_n_divergent": d["n_divergent"],
                     "nuts_reasons": d["reasons"], "anpe_n_samples": n_ess, "anpe_wall_s": anpe_s,
                     "speedup": d["wall_s"] / anpe_s, "wasserstein_over_sigma": dict(zip(THETA_NAMES, w.round(4).tolist())),
                     "nuts_n_blocks": d["n_blocks"], "nuts_draws_per_chain": d["n_draws_per_chain"],
                     "nuts_divergent_fraction": d["divergent_fraction"],
                     "nuts_in_68": in68(nuts, truth), "anpe_in_68": in68(anpe, truth),
                     "c2st": acc, "truth": truth.tolist()} | is_rec)
        print(f"galaxy {i} z={z:.3f}: NUTS {d['wall_s']:.1f} s, {d['n_gradient_evals_total']} grads, "
              f"converged={converged} (R-hat {d['max_rhat']:.3f}, ESS {d['min_ess_bulk']:.0f}); "
              f"ANPE {n_ess} draws {anpe_s * 1e3:.2f} ms; max W1/sigma {w.max():.2f} ({THETA_NAMES[int(w.argmax())]}); "
              f"C2ST {acc:.2f}" + (f"; IS ESS {is_rec['is_ess']:.0f} k {is_rec['is_pareto_k']:.2f}" if is_rec else ""),
              flush=True)
        summarise(final=False)

    summarise(final=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
