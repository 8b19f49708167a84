"""Benchmark the training-set simulator: rows per second and peak memory, end to end.

Each size runs in a fresh subprocess (so peak RSS is that run's own) through the public API:
build the simulator (model, prior, noise), simulate N rows with the defaults and write them to
HDF5. ``rows_per_s`` = N / wall time of the whole run, model build and compilation included;
``peak_rss_bytes`` = the child's ru_maxrss.

    .venv/bin/python benchmarks/bench_simulate.py [--n 100000 1000000] [--chunk 16384] [--out-dir /tmp]

Writes ``benchmarks/results/bench_simulate.json`` (atomically) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import RESULTS, record, write_results


def _child(n: int, out: str, chunk: int, seed: int) -> None:
    import resource

    t0 = time.perf_counter()
    import jax

    from sedflow_jax.simulate import SimulationConfig, build_simulator, simulate_to_hdf5

    sim, meta = build_simulator(SimulationConfig(n=n, seed=seed))
    t_build = time.perf_counter() - t0
    res = simulate_to_hdf5(sim, meta, out, chunk=chunk, overwrite=True, progress=False)
    wall = time.perf_counter() - t0
    dev = jax.devices()[0]
    print(json.dumps({
        "n": n, "wall_s": wall, "build_s": t_build, "simulate_s": res["seconds"], "n_valid": res["n_valid"],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}", "n_devices": jax.local_device_count(),
        "file_bytes": os.path.getsize(out),
    }))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--chunk", type=int, default=16384)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default="/tmp", help="where the training files go (outside the repo)")
    p.add_argument("--keep", action="store_true", help="keep the training files")
    p.add_argument("--results", default=str(RESULTS / "bench_simulate.json"))
    p.add_argument("--child", nargs=2, metavar=("N", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(int(args.child[0]), args.child[1], args.chunk, args.seed)
        return 0

    records, rows = [], []
    for n in args.n:
        out = os.path.join(args.out_dir, f"bench_simulate_{n}.h5")
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), out, "--chunk", str(args.chunk),
                               "--seed", str(args.seed)], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            return proc.returncode
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        if not args.keep:
            os.remove(out)
        params = {"n": n, "device": r["device"], "n_devices": r["n_devices"], "chunk": args.chunk}
        records += [
            record("rows_per_s", n / r["wall_s"], "rows/s", **params),
            record("peak_rss_bytes", r["peak_rss_bytes"], "bytes", **params),
            record("wall_s", r["wall_s"], "s", **params, includes="model build + compile + write"),
            record("file_bytes", r["file_bytes"], "bytes", **params),
            record("n_valid", r["n_valid"], "rows", **params),
        ]
        rows.append(r)
    write_results(args.results, records)
    print(f"{'n':>9s} {'device':>12s} {'wall s':>7s} {'rows/s':>9s} {'peak RSS MiB':>12s} {'file MiB':>8s} {'valid':>8s}")
    for r in rows:
        print(f"{r['n']:9d} {r['device']:>12s} {r['wall_s']:7.1f} {r['n'] / r['wall_s']:9.0f} "
              f"{r['peak_rss_bytes'] / 2**20:12.0f} {r['file_bytes'] / 2**20:8.1f} {r['n_valid']:8d}")
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
