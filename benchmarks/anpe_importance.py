"""ANPE-IS efficiency: how well each flow serves as an importance-sampling proposal.

For the simulated test galaxies of ``nuts_recovery.py`` / ``anpe_vs_nuts.py`` (same selection),
reweights ``--n-proposal`` draws of each model in ``--model`` by the exact posterior
(``sedflow_jax.anpe.importance``) and reports, per model: the ESS, the sampling efficiency
(ESS / draws), the Pareto k-hat, the fraction of galaxies where the reweighting is reliable
(k-hat <= 0.7 and ESS >= 400), the wall time per galaxy, and the width of the flow's marginals
relative to the reweighted posterior (a flow that is too broad has ratios > 1).
With ``--pilot P`` (repeatable) each model is also run with the adaptive proposal: 2 pilot rounds of P
draws, then ``n_proposal - 2 P`` final draws, so every variant spends the same model evaluations.

    python benchmarks/anpe_importance.py --n-gal 20 --n-proposal 262144 [--model DIR|NAME ...] [--pilot 0 --pilot 32768]

Writes ``<out>/anpe_importance<tag>.json`` (records ``is_efficiency``, ``is_reliable_fraction``,
``is_seconds_per_galaxy`` with params ``model``, ``device``, ``n_proposal``, ``n_pilot``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from _common import write_results
from _nuts_common import select_galaxies  # the galaxies of nuts_recovery.py / anpe_vs_nuts.py


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-gal", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--n-proposal", type=int, default=262144)
    p.add_argument("--model", action="append", default=None,
                   help="ANPE model directory or shipped name (repeatable; default: 'default')")
    p.add_argument("--pilot", type=int, action="append", default=None,
                   help="draws per adaptive pilot round (repeatable; 0 = the flow itself; default: 0)")
    p.add_argument("--chunk", type=int, default=16384, help="proposal draws per compiled call")
    p.add_argument("--tag", default="")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)

    from sedflow_jax.anpe import Posterior
    from sedflow_jax.anpe.importance import importance_sample
    from sedflow_jax.params import THETA_NAMES

    rows, sel, sim = select_galaxies(args.n_gal, args.seed)
    device = str(jax.devices()[0])
    pilots = args.pilot or [0]
    if any(2 * n >= args.n_proposal or n < 0 for n in pilots):
        raise SystemExit(f"--pilot values must be >= 0 and < n_proposal / 2 ({args.n_proposal // 2}); got {pilots}")
    records, per_model = [], {}
    for model_name, pilot in [(m, n) for m in (args.model or ["default"]) for n in pilots]:
        name = model_name if pilot == 0 else f"{model_name}/pilot{pilot}"
        n_final = args.n_proposal - 2 * pilot
        post = Posterior.load(model_name)
        # compile: the pilot rounds' shape and one final chunk (size = min(chunk, n)), as every galaxy uses them
        importance_sample(jax.random.key(0), post, sim.model, rows["x"][sel[0]],
                          n_proposal=min(args.chunk, n_final), chunk=args.chunk, n_pilot=pilot)
        gal = []
        for k, i in enumerate(sel):
            t = time.perf_counter()
            r = importance_sample(jax.random.fold_in(jax.random.key(args.seed), k), post, sim.model, rows["x"][i],
                                  n_proposal=n_final, n_samples=4000, chunk=args.chunk, n_pilot=pilot)
            wall = time.perf_counter() - t
            raw = post.sample(jax.random.fold_in(jax.random.key(args.seed + 7), k), rows["x"][i], 4000)
            width = (np.std(raw, 0) / np.maximum(np.std(r.samples, 0), 1e-12)).round(3)
            eff_total = r.ess / args.n_proposal  # per model evaluation, pilot draws included
            gal.append({"row": int(i), "ess": r.ess, "efficiency": eff_total, "pareto_k": r.pareto_k,
                        "reliable": r.reliable, "wall_s": wall, "width_ratio": dict(zip(THETA_NAMES, width.tolist()))})
            print(f"{name} galaxy {i}: ESS {r.ess:.0f} ({eff_total:.2%}), k-hat {r.pareto_k:.2f}, "
                  f"reliable={r.reliable}, {wall:.2f} s", flush=True)
        eff = np.array([g["efficiency"] for g in gal])
        rel = float(np.mean([g["reliable"] for g in gal]))
        wall = float(np.median([g["wall_s"] for g in gal]))
        base = {"model": model_name, "device": device, "n_proposal": args.n_proposal, "n_pilot": pilot,
                "n_galaxies": len(gal)}
        records += [{"name": "is_efficiency", "value": float(np.median(eff)), "unit": "", "params": base | {"statistic": "median"}},
                    {"name": "is_reliable_fraction", "value": rel, "unit": "", "params": base},
                    {"name": "is_seconds_per_galaxy", "value": wall, "unit": "s", "params": base | {"statistic": "median"}}]
        wr = {n: float(np.median([g["width_ratio"][n] for g in gal])) for n in THETA_NAMES}
        per_model[name] = {"meta": {k: post.meta.get(k) for k in ("flow_config", "history", "epochs_run", "seconds_training")},
                           "n_pilot": pilot, "n_final": n_final,
                           "median_ess": float(np.median([g["ess"] for g in gal])),
                           "median_efficiency": float(np.median(eff)), "reliable_fraction": rel,
                           "median_pareto_k": float(np.median([g["pareto_k"] for g in gal])),
                           "median_width_ratio": wr, "galaxies": gal}
        print(f"{name}: median efficiency {np.median(eff):.3%}, reliable {rel:.0%}, {wall:.2f} s/galaxy; "
              f"median width ratio " + ", ".join(f"{n} {v:.2f}" for n, v in wr.items()), flush=True)
    write_results(Path(args.out) / f"anpe_importance{args.tag}.json", records, n_proposal=args.n_proposal,
                  models=per_model)
    print(json.dumps({f"{r['name']}:{r['params']['model']}/pilot{r['params']['n_pilot']}": r["value"] for r in records}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
