"""Streaming catalogue inference at survey scale: time per row, peak memory, kill-and-resume, split-and-merge.

    .venv/bin/python benchmarks/bench_catalog.py [--n-rows 1000000] [--baseline-rows 10000] [--n-samples 100]
                                                 [--quick] [--work DIR] [--out benchmarks/results]

The catalogue is the shipped example (200 rows, 4 bad) repeated to ``--n-rows`` rows with unique int ids.
Each run is ``sedflow-jax infer CAT --no-samples`` in a subprocess (its own peak RSS from ``wait4``):

* ``seconds_per_row`` and ``peak_rss_bytes`` (params ``n_rows``): the baseline catalogue (measured before and
  after the large run, both recorded) and the large one; ``time_per_row_ratio``: large / mean baseline.
* ``resume_identical``: the large run killed (SIGKILL) once half of its chunks are checkpointed, resumed with
  ``--resume``, and compared with the uninterrupted file (:func:`sedflow_jax.pipeline.compare_posterior_files`;
  1 = identical datasets and attributes).
* ``split_identical``: the baseline catalogue run as 4 ``--rows`` parts (cut off chunk boundaries) and merged
  with ``sedflow-jax merge``, compared with its single run.
Writes ``bench_catalog.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULTS, ROOT, record, write_results

EXAMPLE = ROOT / "sedflow_jax" / "data" / "example_catalog.csv"


def write_catalogue(path: Path, n_rows: int) -> Path:
    """The example catalogue repeated to ``n_rows`` rows, ids 0..n_rows-1."""
    lines = [s for s in EXAMPLE.read_text().splitlines() if s and not s.startswith("#")]
    header, body = lines[0], [s[s.index(",") :] for s in lines[1:]]
    with open(path, "w") as fh:
        fh.write(header + "\n")
        for i in range(n_rows):
            fh.write(f"{i}{body[i % len(body)]}\n")
    return path


def infer_cmd(cat: Path, out: Path, a, *extra) -> list[str]:
    return [sys.executable, "-m", "sedflow_jax.cli.main", "infer", str(cat), "--id-col", "id", "--out", str(out),
            "--no-samples", "--n-samples", str(a.n_samples), "--chunk-rows", str(a.chunk_rows), "--no-progress", *extra]


def run(cmd, *, kill_when=None) -> dict:
    """Run ``cmd``; with ``kill_when`` (a function -> bool polled every 0.2 s) SIGKILL it once that holds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = False
    if kill_when is not None:
        while proc.poll() is None and not kill_when():
            time.sleep(0.2)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed = True
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read()
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0 and not killed:
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}):\n{out}")
    import re

    m = re.search(r"; ([0-9.]+) s \(", out)  # infer's own time: reading, inference, writing (no start-up)
    return {"seconds": time.perf_counter() - t0, "peak_rss_bytes": usage.ru_maxrss * 1024, "output": out,
            "killed": killed, "pipeline_seconds": float(m.group(1)) if m else float("nan")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-rows", type=int, default=1_000_000)
    p.add_argument("--baseline-rows", type=int, default=10_000)
    p.add_argument("--n-samples", type=int, default=100, help="samples per galaxy (summaries only are written)")
    p.add_argument("--chunk-rows", type=int, default=16384)
    p.add_argument("--quick", action="store_true", help="2,000 rows against 500, chunks of 256 (a smoke test)")
    p.add_argument("--work", default=None, help="scratch directory (default: a temporary one, removed)")
    p.add_argument("--out", default=str(RESULTS))
    a = p.parse_args(argv)
    if a.quick:
        a.n_rows, a.baseline_rows, a.chunk_rows = 2000, 500, 256
    import tempfile

    from sedflow_jax.pipeline import compare_posterior_files

    work = Path(a.work or tempfile.mkdtemp(prefix="bench_catalog_"))
    work.mkdir(parents=True, exist_ok=True)
    params = {"n_samples": a.n_samples, "chunk_rows": a.chunk_rows, "write_samples": False}
    records, small, big = [], work / "small.csv", work / "big.csv"
    write_catalogue(small, a.baseline_rows)
    write_catalogue(big, a.n_rows)

    def timed(cat, n, out, label):
        r = run(infer_cmd(cat, out, a))
        wall, inner = r["seconds"] / n, r["pipeline_seconds"] / n
        print(f"{label:20s} {n:>9,d} rows  {r['seconds']:8.1f} s wall  {1e3 * wall:7.3f} ms/row  "
              f"(in infer_catalog {1e3 * inner:7.3f} ms/row)  peak RSS {r['peak_rss_bytes'] / 2**30:5.2f} GiB", flush=True)
        records.append(record("seconds_per_row", wall, "s", n_rows=n, run=label, timing="process wall clock", **params))
        records.append(record("seconds_per_row", inner, "s", n_rows=n, run=label,
                              timing="infer_catalog (no interpreter start-up or model load)", **params))
        records.append(record("peak_rss_bytes", r["peak_rss_bytes"], "bytes", n_rows=n, run=label, **params))
        return wall, inner

    base1 = timed(small, a.baseline_rows, work / "small.h5", "baseline (before)")
    per_row = timed(big, a.n_rows, work / "big.h5", "large")
    base2 = timed(small, a.baseline_rows, work / "small_again.h5", "baseline (after)")
    for j, timing in enumerate(("process wall clock", "infer_catalog")):
        ratio = per_row[j] / ((base1[j] + base2[j]) / 2)
        records.append(record("time_per_row_ratio", ratio, "", n_rows=a.n_rows, baseline_rows=a.baseline_rows,
                              timing=timing, **params))
        print(f"time per row, large / baseline ({timing}): {ratio:.3f}")

    # kill once half the chunks are checkpointed, then resume
    partial = work / "big_killed.h5.partial"
    n_chunks = -(-a.n_rows // a.chunk_rows)
    half = lambda: partial.is_dir() and len(list(partial.glob("rows_*.h5"))) >= n_chunks // 2  # noqa: E731
    r1 = run(infer_cmd(big, work / "big_killed.h5", a), kill_when=half)
    n_done = len(list(partial.glob("rows_*.h5")))
    r2 = run(infer_cmd(big, work / "big_killed.h5", a, "--resume"))
    diff = compare_posterior_files(work / "big.h5", work / "big_killed.h5")
    print(f"killed after {r1['seconds']:.0f} s with {n_done}/{n_chunks} chunks; resumed in {r2['seconds']:.0f} s; "
          f"differences from the uninterrupted file: {diff or 'none'}")
    records.append(record("resume_identical", int(not diff and r1["killed"]), "", n_rows=a.n_rows,
                          chunks_before_kill=n_done, n_chunks=n_chunks, differences=diff, **params))
    records.append(record("resume_seconds_total", r1["seconds"] + r2["seconds"], "s", n_rows=a.n_rows, **params))

    # split into 4 parts, cut off the chunk boundaries, and merge
    cuts = [0, *(a.baseline_rows * k // 4 + 1 for k in (1, 2, 3)), a.baseline_rows]
    parts = []
    for k, (s, e) in enumerate(zip(cuts, cuts[1:])):
        parts.append(work / f"part{k}.h5")
        run(infer_cmd(small, parts[-1], a, "--rows", f"{s}:{e}"))
    run([sys.executable, "-m", "sedflow_jax.cli.main", "merge", *map(str, parts), "--out", str(work / "merged.h5")])
    diff = compare_posterior_files(work / "small.h5", work / "merged.h5")
    print(f"split at rows {cuts[1:-1]} and merged: differences from the single run: {diff or 'none'}")
    records.append(record("split_identical", int(not diff), "", n_rows=a.baseline_rows, cuts=cuts, differences=diff,
                          **params))
    res = write_results(Path(a.out) / "bench_catalog.json", records)
    print(f"wrote {Path(a.out) / 'bench_catalog.json'} ({res['machine'].get('cpu_model', '')})")
    if a.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
