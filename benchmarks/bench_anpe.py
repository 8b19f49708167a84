"""Benchmark the ANPE: training seconds per epoch, posterior samples per second, seconds per galaxy.

    .venv/bin/python benchmarks/bench_anpe.py [--model DIR] [--quick] [--out benchmarks/results]

* ``train_seconds_per_epoch``: one epoch of the model's architecture on ``--train-rows`` rows
  (synthetic pairs with the right shapes; the step cost does not depend on the values), compile excluded.
* ``samples_per_s`` and ``seconds_per_galaxy``: :meth:`Posterior.sample` of the given model (default: the
  shipped one) at 1,000 and 10,000 samples for 1 and 10,000 galaxies, after one warm-up call per shape.
Writes ``bench_anpe.json`` atomically (``{"machine": ..., "records": [{name, value, unit, params}]}``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import RESULTS, record, write_results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--quick", action="store_true", help="small sizes, < 60 s")
    p.add_argument("--train-rows", type=int, default=None)
    p.add_argument("--out", default=str(RESULTS))
    a = p.parse_args(argv)

    import jax
    import jax.random as jr
    import numpy as np

    from sedflow_jax.anpe import Posterior, TrainConfig
    from sedflow_jax.anpe.train import make_optimizer, train_step, trainable_partition

    post = Posterior.load(a.model)
    dev = f"{jax.devices()[0].platform}:{getattr(jax.devices()[0], 'device_kind', '')}"
    records = []

    def rec(name, value, unit, **params):
        records.append(record(name, value, unit, **params, device=dev))

    # training epoch time
    tc = TrainConfig.from_json(post.meta.get("train_config", {}))
    rows = a.train_rows or (20_000 if a.quick else 1_069_590)
    steps = rows // tc.batch_size
    params, static = trainable_partition(post.flow)
    opt = make_optimizer(tc, steps)
    st = opt.init(params)
    rng = np.random.default_rng(0)
    y = rng.normal(size=(tc.batch_size, 11)).astype(np.float32)
    xs = rng.normal(size=(tc.batch_size, 11)).astype(np.float32)
    params, st, loss, _ = train_step(params, static, st, opt, y, xs)
    loss.block_until_ready()
    n_time = min(steps, 30 if a.quick else 200)
    t0 = time.perf_counter()
    for _ in range(n_time):
        params, st, loss, _ = train_step(params, static, st, opt, y, xs)
    loss.block_until_ready()
    per_step = (time.perf_counter() - t0) / n_time
    rec("train_seconds_per_epoch", per_step * steps, "s", rows=rows, batch_size=tc.batch_size,
        timed_steps=n_time)

    x1 = np.array([18.5, 17.0, 16.3, 15.9, 15.6, 0.05, 0.02, 0.02, 0.02, 0.03, 0.08], np.float32)
    cases = [(1, 1000), (1, 10000)] + ([(256, 1000)] if a.quick else [(10000, 1000), (10000, 10000)])
    for n_gal, n in cases:
        x = np.repeat(x1[None], n_gal, 0) + rng.normal(0, 0.05, size=(n_gal, 11)).astype(np.float32) * np.r_[np.ones(5), np.zeros(6)].astype(np.float32)
        post.sample(jr.key(0), x, n, callback=lambda s, o: None)  # warm-up / compile
        reps = 5 if n_gal == 1 else 1
        t0 = time.perf_counter()
        for r in range(reps):
            post.sample(jr.key(r + 1), x, n, callback=lambda s, o: None)
        dt = (time.perf_counter() - t0) / reps
        rec("seconds_per_galaxy", dt / n_gal, "s", galaxies=n_gal, samples=n)
        rec("samples_per_s", n_gal * n / dt, "1/s", galaxies=n_gal, samples=n)
        print(f"  {n_gal:6d} galaxies x {n:6d} samples: {dt:8.3f} s", flush=True)
    out = Path(a.out) / "bench_anpe.json"
    write_results(out, records, model=post.meta.get("flow_config"), quick=a.quick)
    print(f"{'name':26s} {'value':>12s} unit  params")
    for r in records:
        print(f"{r['name']:26s} {r['value']:12.4g} {r['unit']:5s} {r['params']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
