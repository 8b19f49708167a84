"""Throughput of exact ugriz photometry: sedflow_jax vs DSPS on the same SSP table, in the same run.

Measures photometric SEDs per second of ``ProvabgsModel.build()`` (default basis, default BC03
table, SDSS ugriz, ``precision=HIGHEST`` contractions) for SEDflow prior draws with z ~ U(0, 0.2):

* batch 1: a jitted single-galaxy call, repeated;
* batch B > 1: one jitted ``vmap`` call over all B galaxies ("vmap") and ``photometry_batch``
  over fixed-size chunks ("chunked", includes input validation and host transfers);
* float32 in this process, float64 in a subprocess (``JAX_ENABLE_X64=1``);
* DSPS (always float64: importing it sets ``jax_enable_x64``), in a subprocess, doing the same
  work per galaxy: the same 42-bin SFH and metallicity tables (from our model's ``_history``) through
  ``calc_rest_sed_sfh_table_met_table`` plus ``calc_obs_mag`` in each band (native speclite curves),
  jitted and vmapped, same batch sizes and methods. No dust or burst is applied on the DSPS side;
  dust costs ~1e5 FLOP per galaxy against ~5e6 for the SSP sum, so the work is comparable.
* the gradient of sum(log flux) w.r.t. theta (vmap of grad, one jitted call) at batch 1000
  (with ``--quick``: at the largest batch).

Compile time is excluded from throughput and reported separately (``compile_s``). Timings are
medians over ``--repeats``. Writes ``<out>/bench_model.json`` (atomically) and ``bench_model.png``.

Usage: ``python benchmarks/bench_model.py [--batches 1,1000,100000] [--repeats 3] [--chunk 4096]
[--device cpu|gpu] [--quick] [--out benchmarks/results]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, record, write_results

DSPS_LGMET_SCATTER = 1e-3
GRAD_BATCH = 1000


# ----------------------------------------------------------------------------- helpers
def _block(x):
    import jax

    return jax.block_until_ready(x)


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def _time_calls(fn, args, repeats, n_inner=1):
    """Median seconds per call of an already-compiled fn."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n_inner):
            _block(fn(*args))
        out.append((time.perf_counter() - t0) / n_inner)
    return _median(out)


def _compile(jitted, *args):
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _inputs(n, dtype, seed=0):
    import jax

    from sedflow_jax.priors import sedflow_prior

    prior = sedflow_prior(dtype=dtype)
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return prior.sample(k1, n), prior.sample_redshift(k2, n)


# ----------------------------------------------------------------------------- ours
def bench_ours(batches, repeats, chunk, dtype_name, n_single_calls, grad_batch=0):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sedflow_jax.model import ProvabgsModel, photometry_batch

    dtype = jnp.dtype(dtype_name)
    dev = jax.devices()[0].platform
    t0 = time.perf_counter()
    model = ProvabgsModel.build(dtype=dtype)
    records = [record("build_s", time.perf_counter() - t0, "s", device=dev, dtype=dtype_name, method="sedflow_jax")]
    theta_all, z_all = _inputs(max(max(batches), grad_batch), dtype)
    common = dict(device=dev, dtype=dtype_name, method="sedflow_jax")

    one = jax.jit(lambda m, th, z: m(th, z))
    vm = jax.jit(lambda m, th, z: jax.vmap(m, in_axes=(0, 0))(th, z))
    for b in batches:
        th, zz = theta_all[:b], z_all[:b]
        if b == 1:
            fn, c_s = _compile(one, model, th[0], zz[0])
            sec = _time_calls(fn, (model, th[0], zz[0]), repeats, n_single_calls)
            records += [record("seds_per_s", 1.0 / sec, "1/s", batch=1, variant="single", **common),
                        record("compile_s", c_s, "s", batch=1, variant="single", **common)]
            continue
        fn, c_s = _compile(vm, model, th, zz)
        sec = _time_calls(fn, (model, th, zz), repeats)
        records += [record("seds_per_s", b / sec, "1/s", batch=b, variant="vmap", **common),
                    record("compile_s", c_s, "s", batch=b, variant="vmap", **common)]
        th_np, z_np = np.asarray(th, np.float64), np.asarray(zz, np.float64)
        t0 = time.perf_counter()
        size = min(chunk, b)  # batches below one chunk: a chunk of the batch's size (photometry_batch pads to chunk_size)
        photometry_batch(model, th_np, z_np, chunk_size=size)  # compiles the chunk function
        first = time.perf_counter() - t0
        sec = _time_calls(lambda: photometry_batch(model, th_np, z_np, chunk_size=size), (), repeats)
        records += [record("seds_per_s", b / sec, "1/s", batch=b, variant="chunked", chunk=min(chunk, b), **common),
                    record("compile_s", max(first - sec, 0.0), "s", batch=b, variant="chunked", chunk=min(chunk, b), **common)]
    if grad_batch:
        th, zz = theta_all[:grad_batch], z_all[:grad_batch]
        g = jax.jit(lambda m, th, z: jax.vmap(jax.grad(lambda t, zi: jnp.sum(jnp.log(m(t, zi)))))(th, z))
        fn, c_s = _compile(g, model, th, zz)
        sec = _time_calls(fn, (model, th, zz), repeats)
        records += [record("grad_per_s", grad_batch / sec, "1/s", batch=grad_batch, variant="vmap", **common),
                    record("compile_s", c_s, "s", batch=grad_batch, variant="grad", **common)]
    return records


# ----------------------------------------------------------------------------- DSPS inputs
def dsps_tables(n, seed=0):
    """Per-galaxy DSPS SFH/Z tables (float64 NumPy) from our model's 42-bin history (float32 model)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sedflow_jax.model import ProvabgsModel
    from sedflow_jax.sps.bc03 import default_ssp_path

    model = ProvabgsModel.build()
    theta, z = _inputs(n, jnp.float32, seed)
    hist = jax.jit(jax.vmap(lambda t, zz: model.history(t, zz)))(theta, z)
    edges = np.asarray(hist["edges"], np.float64)  # (n, 43) lookback
    mass = np.asarray(hist["m"], np.float64) * 10.0 ** np.asarray(theta[:, :1], np.float64)
    lgz = np.log10(np.asarray(hist["z_bins"], np.float64)) + model.log10_zmet_offset
    t_obs = np.asarray(hist["t_age"], np.float64)
    # cosmic-time edges, ascending, clamped to DSPS's table start (0.01 Gyr)
    cosmic = np.maximum(t_obs[:, None] - edges[:, ::-1], 0.01)
    width = np.diff(cosmic, axis=1)
    sfr = np.where(width > 0, mass[:, ::-1] / np.where(width > 0, width, 1.0) / 1e9, 0.0)  # Msun/yr
    lg = lgz[:, ::-1]
    delta = 1e-6  # Gyr; the shortest bin is 1.1 Myr
    # two nodes per edge (before/after the jump); the last node is t_obs itself
    t_tab = np.repeat(cosmic, 2, axis=1) + np.tile([-delta, delta], cosmic.shape[1])
    t_tab[:, 0] = cosmic[:, 0]
    t_tab[:, -1] = cosmic[:, -1]
    t_tab = np.maximum.accumulate(t_tab, axis=1)
    zero = np.zeros((n, 1))
    s_tab = np.stack([np.concatenate([zero, sfr], 1), np.concatenate([sfr, zero], 1)], 2).reshape(n, -1)
    s_tab[:, -1] = sfr[:, -1]
    z_tab = np.stack([np.concatenate([lg[:, :1], lg], 1), np.concatenate([lg, lg[:, -1:]], 1)], 2).reshape(n, -1)
    return dict(t_table=t_tab, sfr_table=s_tab, lgmet_table=z_tab, t_obs=t_obs, redshift=np.asarray(z, np.float64),
                ssp_path=np.array(str(default_ssp_path())))


# ----------------------------------------------------------------------------- DSPS worker
def bench_dsps(npz_path, batches, repeats, chunk, n_single_calls):
    import jax
    import jax.numpy as jnp
    import numpy as np
    import speclite.filters
    from astropy.cosmology import Planck13
    from dsps import calc_obs_mag, calc_rest_sed_sfh_table_met_table, load_ssp_templates

    with np.load(npz_path) as f:
        inp = {k: f[k] for k in f.files}
    ssp = load_ssp_templates(fn=str(inp["ssp_path"]))
    curves = [speclite.filters.load_filter(n) for n in speclite.filters.load_filters("sdss2010-*").names]
    filt = [(jnp.asarray(c.wavelength, jnp.float64), jnp.asarray(c.response, jnp.float64)) for c in curves]
    cosmo = (Planck13.Om0, -1.0, 0.0, Planck13.H0.value / 100.0)

    def one(t_table, sfr_table, lgmet_table, t_obs, z):
        sed = calc_rest_sed_sfh_table_met_table(
            t_table, sfr_table, lgmet_table, DSPS_LGMET_SCATTER, ssp.ssp_lgmet, ssp.ssp_lg_age_gyr, ssp.ssp_flux, t_obs
        ).rest_sed
        mags = jnp.stack([calc_obs_mag(ssp.ssp_wave, sed, w, r, z, *cosmo) for w, r in filt])
        return 10.0 ** (-0.4 * (mags - 22.5))  # nanomaggies

    keys = ("t_table", "sfr_table", "lgmet_table", "t_obs", "redshift")
    arrs = [jnp.asarray(inp[k]) for k in keys]
    one_j = jax.jit(one)
    vm = jax.jit(jax.vmap(one))
    dev = jax.devices()[0].platform
    common = dict(device=dev, dtype="float64", method="dsps")
    records, fluxes = [], None
    for b in batches:
        args = [a[:b] for a in arrs]
        if b == 1:
            fn, c_s = _compile(one_j, *[a[0] for a in args])
            sec = _time_calls(fn, [a[0] for a in args], repeats, n_single_calls)
            records += [record("seds_per_s", 1.0 / sec, "1/s", batch=1, variant="single", **common),
                        record("compile_s", c_s, "s", batch=1, variant="single", **common)]
            continue
        fn, c_s = _compile(vm, *args)
        sec = _time_calls(fn, args, repeats)
        if fluxes is None:
            fluxes = np.asarray(fn(*args))
        records += [record("seds_per_s", b / sec, "1/s", batch=b, variant="vmap", **common),
                    record("compile_s", c_s, "s", batch=b, variant="vmap", **common)]
        size = min(chunk, b)
        padded = [jnp.concatenate([a, jnp.repeat(a[:1], (-b) % size, 0)]) for a in args]
        fn_c, c_s = _compile(vm, *[a[:size] for a in padded])

        def chunked():
            out = [np.asarray(fn_c(*[a[i : i + size] for a in padded])) for i in range(0, b, size)]
            return np.concatenate(out)[:b]

        sec = _time_calls(chunked, (), repeats)
        records += [record("seds_per_s", b / sec, "1/s", batch=b, variant="chunked", chunk=size, **common),
                    record("compile_s", c_s, "s", batch=b, variant="chunked", chunk=size, **common)]
    return records, fluxes


# ----------------------------------------------------------------------------- orchestration
def _start_worker(kind, args, extra_env, tmp):
    out = Path(tmp) / f"{kind}.json"
    batches = args.batches
    if kind == "dsps":
        cap = args.dsps_max_batch if args.dsps_max_batch is not None else (10_000 if args.device == "cpu" else None)
        batches = [b for b in batches if cap is None or b <= cap] or [min(batches)]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", kind, "--_worker-out", str(out),
           "--batches", ",".join(map(str, batches)), "--repeats", str(args.repeats), "--chunk", str(args.chunk),
           "--device", args.device, "--_single-calls", str(args.single_calls)]
    if args.dsps_inputs:
        cmd += ["--_dsps-inputs", args.dsps_inputs]
    env = dict(os.environ, **extra_env)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return kind, proc, out


def _finish_worker(handle):
    kind, proc, out = handle
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{err[-4000:]}")
    return json.loads(out.read_text())


def _set_device(device):
    import jax

    jax.config.update("jax_platforms", "cuda" if device == "gpu" else "cpu")


def _ratios(records):
    """sedflow_jax rate / DSPS rate for each (batch, variant, our dtype)."""
    rate = {}
    for r in records:
        if r["name"] == "seds_per_s":
            p = r["params"]
            rate[(p["method"], p["dtype"], p["batch"], p["variant"])] = r["value"]
    out = []
    for (meth, dt, b, var), v in sorted(rate.items(), key=str):
        ref = rate.get(("dsps", "float64", b, var))
        if meth == "sedflow_jax" and ref:
            dev = next(r["params"]["device"] for r in records if r["name"] == "seds_per_s")
            out.append(record("seds_per_s_ratio_vs_dsps", v / ref, "1", batch=b, device=dev, dtype=dt, variant=var,
                            method="sedflow_jax/dsps", dsps_dtype="float64"))
    return out


def _plot(records, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in records if r["name"] in ("seds_per_s", "grad_per_s")]
    labels = [f"{r['params']['method']} {r['params']['dtype'][-2:]} {r['params']['variant']}\nB={r['params']['batch']}"
              + (" grad" if r["name"] == "grad_per_s" else "") for r in rows]
    colors = ["tab:blue" if r["params"]["method"] == "sedflow_jax" else "tab:orange" for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(rows)), 4.5))
    ax.bar(range(len(rows)), [r["value"] for r in rows], color=colors)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), labels, rotation=90, fontsize=7)
    ax.set_ylabel("galaxies per second")
    ax.set_title(f"exact ugriz photometry ({rows[0]['params']['device'] if rows else ''}); blue: sedflow_jax, orange: DSPS")
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp.png")
    os.close(fd)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def _print_table(records):
    print(f"{'name':26s} {'method':12s} {'dtype':8s} {'batch':>7s} {'variant':8s} {'value':>12s} unit")
    for r in records:
        p = r["params"]
        print(f"{r['name']:26s} {p.get('method', ''):12s} {p.get('dtype', ''):8s} {p.get('batch', ''):>7} "
              f"{p.get('variant', ''):8s} {r['value']:12.4g} {r['unit']}")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,1000,100000", help="comma-separated batch sizes")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    ap.add_argument("--chunk", type=int, default=4096, help="chunk size of the chunked variant")
    ap.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test, < 60 s on CPU)")
    ap.add_argument("--out", default=str(RESULTS), help="output directory")
    ap.add_argument("--no-x64", action="store_true", help="skip the float64 subprocess")
    ap.add_argument("--no-dsps", action="store_true", help="skip the DSPS subprocess")
    ap.add_argument("--dsps-max-batch", type=int, default=None,
                    help="largest batch DSPS runs (default 10000 on CPU, where it does ~300 SEDs/s; no cap on GPU)")
    ap.add_argument("--single-calls", type=int, default=200, help="calls per repeat at batch 1")
    ap.add_argument("--_worker", choices=("x64", "dsps"), help=argparse.SUPPRESS)
    ap.add_argument("--_worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--_dsps-inputs", dest="dsps_inputs", help=argparse.SUPPRESS)
    ap.add_argument("--_single-calls", dest="single_calls_w", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.batches, args.repeats, args.chunk, args.single_calls = "1,64", 1, 32, 20
    args.batches = [int(b) for b in str(args.batches).split(",") if b]
    if args.single_calls_w:
        args.single_calls = args.single_calls_w
    return args


def main(argv=None):
    args = parse_args(argv)
    _set_device(args.device)
    if args._worker == "x64":
        recs = bench_ours(args.batches, args.repeats, args.chunk, "float64", args.single_calls)
        Path(args._worker_out).write_text(json.dumps(recs))
        return
    if args._worker == "dsps":
        recs, _ = bench_dsps(args.dsps_inputs, args.batches, args.repeats, args.chunk, args.single_calls)
        Path(args._worker_out).write_text(json.dumps(recs))
        return

    import numpy as np

    out_dir = Path(args.out)
    grad_batch = min(GRAD_BATCH, max(args.batches)) if args.quick else GRAD_BATCH
    # Full runs measure each part alone. --quick (a smoke test, timings meaningless) overlaps the
    # float64 and DSPS subprocesses with the float32 part to stay under a minute.
    with tempfile.TemporaryDirectory() as tmp:
        workers = []
        if not args.no_dsps:
            path = Path(tmp) / "dsps_inputs.npz"
            np.savez(path, **dsps_tables(max(args.batches)))
            args.dsps_inputs = str(path)
        jobs = ([] if args.no_x64 else [("x64", {"JAX_ENABLE_X64": "1"})]) + ([] if args.no_dsps else [("dsps", {})])
        if args.quick:
            workers = [_start_worker(k, args, env, tmp) for k, env in jobs]
        records = bench_ours(args.batches, args.repeats, args.chunk, "float32", args.single_calls, grad_batch)
        if not args.quick:
            for k, env in jobs:
                records += _finish_worker(_start_worker(k, args, env, tmp))
        for w in workers:
            records += _finish_worker(w)
    records += _ratios(records)
    _print_table(records)
    write_results(out_dir / "bench_model.json", records,
                  args={k: v for k, v in vars(args).items() if not k.startswith("_")})
    _plot(records, out_dir / "bench_model.png")
    print(f"wrote {out_dir / 'bench_model.json'} and {out_dir / 'bench_model.png'}")


if __name__ == "__main__":
    main()
