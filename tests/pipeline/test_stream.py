"""Streamed catalogue inference: chunks, checkpoints and resume, ``rows=`` splits and merging, one compile.

The shipped default flow on the example catalogue (200 rows, 4 bad) in chunks of 32 rows, few samples. The
1,000,000-row figures (memory, time per row, a SIGKILL at 50%) are ``benchmarks/bench_catalog.py``'s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sedflow_jax.anpe import Posterior
from sedflow_jax.errors import InputError
from sedflow_jax.io.catalog import CatalogColumns, CatalogueReader
from sedflow_jax.pipeline import (InferConfig, compare_posterior_files, infer_catalog, merge_posterior_files,
                                  read_posterior_file)
from tests.compile_count import count_compiles

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "sedflow_jax", "data", "example_catalog.csv")
CONFIG = InferConfig(n_samples=16, chunk_rows=32, progress=False)


@pytest.fixture(scope="module")
def posterior():
    return Posterior.load(None)


def run(posterior, out, config=CONFIG, **kw):
    with CatalogueReader(EXAMPLE, CatalogColumns(id="id"), redshift_range=posterior.redshift_range,
                         extra_prefix="true_") as reader:
        return infer_catalog(posterior, reader, out, config, **kw)


@pytest.fixture(scope="module")
def reference(posterior, tmp_path_factory):
    """The uninterrupted run over all 200 rows."""
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    res = run(posterior, out)
    return out, res


def test_one_file_of_every_row_in_input_order(reference):
    out, res = reference
    f = read_posterior_file(out)
    assert res["n_rows"] == 200 and res["n_invalid"] == 4 and res["resumed"] == 0
    assert f["id"].tolist() == list(range(200)) and f["samples"].shape == (200, 16, 12)
    assert f["attrs"]["row_start"] == 0 and f["attrs"]["row_stop"] == 200 and f["attrs"]["schema_version"] == 2
    assert f["attrs"]["counts"] == {k: res[k] for k in f["attrs"]["counts"]}
    assert f["flag_reason"][[10, 50, 90, 150]].tolist() == ["missing_value", "error_nonpositive",
                                                           "redshift_outside_range", "missing_value"]
    assert not os.path.exists(str(out) + ".partial")


def test_interrupted_run_resumes_to_the_same_file(posterior, reference, tmp_path, monkeypatch):
    import sedflow_jax.pipeline.run as run_module

    calls, real = [], run_module.infer_chunk

    def dies_on_the_fourth_chunk(*args, **kwargs):
        calls.append(args[3])
        if len(calls) == 4:
            raise KeyboardInterrupt  # as Ctrl-C or the CLI's SIGTERM handler
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "infer_chunk", dies_on_the_fourth_chunk)
    out = tmp_path / "p.h5"
    with pytest.raises(KeyboardInterrupt):
        run(posterior, out)
    parts = sorted(p.name for p in (tmp_path / "p.h5.partial").glob("rows_*.h5"))
    assert len(parts) == 3 and not out.exists() and not list((tmp_path / "p.h5.partial").glob(".*.tmp"))
    with pytest.raises(InputError, match="settings"):  # other settings cannot continue this checkpoint
        run(posterior, out, InferConfig(n_samples=16, chunk_rows=32, seed=1, progress=False), resume=True)
    monkeypatch.setattr(run_module, "infer_chunk", real)
    with pytest.raises(KeyboardInterrupt):  # the refused resume kept the checkpoint
        monkeypatch.setattr(run_module, "infer_chunk", dies_on_the_fourth_chunk)
        calls.clear()
        run(posterior, out, resume=True)
    monkeypatch.setattr(run_module, "infer_chunk", real)
    res = run(posterior, out, resume=True)
    assert res["resumed"] == 6 and res["n_rows"] == 200
    assert compare_posterior_files(reference[0], out) == []


def test_split_runs_merge_to_the_single_run(posterior, reference, tmp_path):
    parts = []
    for k, rows in enumerate([(0, 50), (50, 131), (131, None)]):  # cut off the chunk boundaries
        parts.append(tmp_path / f"part{k}.h5")
        run(posterior, parts[-1], rows=rows)
    assert read_posterior_file(parts[1], samples=False)["attrs"]["row_start"] == 50
    merged = merge_posterior_files(parts[::-1], tmp_path / "merged.h5")
    assert compare_posterior_files(reference[0], merged) == []
    with pytest.raises(InputError, match="gap"):
        merge_posterior_files([parts[0], parts[2]], tmp_path / "gap.h5")
    with pytest.raises(InputError, match="overlap"):
        merge_posterior_files([parts[0], parts[0]], tmp_path / "twice.h5")
    run(posterior, tmp_path / "other.h5", InferConfig(n_samples=16, chunk_rows=32, seed=3, progress=False),
        rows=(50, 131))
    with pytest.raises(InputError, match="settings"):
        merge_posterior_files([parts[0], tmp_path / "other.h5", parts[2]], tmp_path / "mixed.h5")


def test_chunks_compile_the_flow_once(posterior, tmp_path):
    config = InferConfig(n_samples=13, chunk_rows=64, progress=False)  # a sample count no other test compiles
    with count_compiles("_sample_chunk") as c:
        run(posterior, tmp_path / "p.h5", config)
    assert c.count == 1  # 4 chunks of 62-64 valid rows and a last one of 8: one compiled shape


@pytest.mark.parametrize("rows, chunk_rows", [((0, 192), 64), ((190, 191), 64), ((199, None), 64), ((10, 11), 64),
                                              ((0, 200), 1)])
def test_edges_length_a_multiple_one_row_chunks_all_invalid(posterior, reference, tmp_path, rows, chunk_rows):
    """A range that is a multiple of the chunk, one-row chunks, a chunk of one invalid row (10): the rows
    of the uninterrupted run, bit for bit."""
    cfg = InferConfig(n_samples=16, chunk_rows=chunk_rows, progress=False)
    if chunk_rows == 1:
        rows = (60, 66)
    run(posterior, tmp_path / "p.h5", cfg, rows=rows)
    f, ref = read_posterior_file(tmp_path / "p.h5"), read_posterior_file(reference[0])
    a, b = rows[0], rows[1] or 200
    for k in ("samples", "median", "flags", "id", "method", "x"):
        np.testing.assert_array_equal(f[k], ref[k][a:b], err_msg=k)
    assert f["attrs"]["counts"]["n_rows"] == b - a


def test_rows_beyond_the_end_and_stale_temps_on_resume(posterior, tmp_path):
    with pytest.raises(InputError, match="rows"):
        run(posterior, tmp_path / "p.h5", rows=(200, None))
    (tmp_path / "p.h5.partial").mkdir()
    stale = tmp_path / "p.h5.partial" / ".rows_000000000000_000000000032.h5.abcd1234.tmp"
    stale.write_bytes(b"half")
    other = tmp_path / ".p.h5.x.abcd1234.tmp"  # another output's temporary file (p.h5.x): left alone
    other.write_bytes(b"x")
    from sedflow_jax.io.atomic import atomic_write_json

    atomic_write_json(tmp_path / "p.h5.partial" / "manifest.json", {"settings": "other"})  # another run's
    with pytest.raises(InputError, match="cannot resume"):
        run(posterior, tmp_path / "p.h5", resume=True)
    assert stale.exists()  # a refused resume touches nothing
    run(posterior, tmp_path / "p.h5", rows=(0, 40))  # without --resume: the old checkpoint is replaced
    assert not (tmp_path / "p.h5.partial").exists() and other.exists()


def test_fallback_refits_are_keyed_by_catalogue_row(posterior, tmp_path, monkeypatch):
    """With the NUTS fallback, a split run merges to the single run: each refit's key and draw pick follow its
    catalogue row, not its place in a chunk (run_nuts_batch is replaced by a fake whose draws come from the
    key it is given; no NUTS is compiled)."""
    import jax
    from types import SimpleNamespace

    import sedflow_jax.mcmc as mcmc
    from sedflow_jax.pipeline import FallbackConfig

    def fake_nuts(key, f, w, z, *, key_index, galaxy_ids, **kw):
        for j, k in enumerate(key_index):
            draws = np.asarray(jax.random.uniform(jax.random.fold_in(key, int(k)), (1, 40, 12)))
            yield j, SimpleNamespace(converged=True, idata=SimpleNamespace(posterior={"theta": draws}),
                                     diagnostics={"wall_s": 0.0, "max_rhat": 1.0, "min_ess_bulk": 400.0})

    monkeypatch.setattr(mcmc, "run_nuts_batch", fake_nuts)
    cfg = InferConfig(n_samples=16, chunk_rows=32, progress=False,
                      fallback=FallbackConfig(chi2_p=1.0 - 1e-12, n_check=4))  # every valid row is refit
    run(posterior, tmp_path / "single.h5", cfg, rows=(20, 100))
    parts = [tmp_path / "a.h5", tmp_path / "b.h5"]
    run(posterior, parts[0], cfg, rows=(20, 45))
    run(posterior, parts[1], cfg, rows=(45, 100))
    merge_posterior_files(parts, tmp_path / "merged.h5")
    assert compare_posterior_files(tmp_path / "single.h5", tmp_path / "merged.h5") == []
    f = read_posterior_file(tmp_path / "merged.h5", samples=False)
    assert (f["method"] == "nuts").sum() == f["attrs"]["counts"]["n_nuts"] > 70


def test_sigterm_keeps_the_checkpoint_and_resume_finishes(posterior, reference, tmp_path):
    """The command under SIGTERM (a batch system's kill): exit 130, finished chunks kept, no temporary file."""
    out = tmp_path / "p.h5"
    cmd = [sys.executable, "-m", "sedflow_jax.cli.main", "infer", EXAMPLE, "--id-col", "id", "--out", str(out),
           "--n-samples", "16", "--chunk-rows", "32", "--no-progress"]
    cmd[cmd.index("32")] = "8"  # 25 chunks: the run is still going when the first one is checkpointed
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    partial = tmp_path / "p.h5.partial"
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and not list(partial.glob("rows_*.h5")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    if proc.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    assert proc.returncode == 130, output
    assert "--resume" in output and list(partial.glob("rows_*.h5")) and not list(partial.glob(".*.tmp"))
    cfg8 = InferConfig(n_samples=16, chunk_rows=8, progress=False)
    res = run(posterior, out, cfg8, resume=True)
    assert res["resumed"] >= 1
    diff = compare_posterior_files(reference[0], out)
    assert diff == ["attrs/settings"]  # chunks of 8 rather than 32 rows: the same rows, bit for bit


def test_in_memory_catalogue_streams_too(posterior, reference, tmp_path):
    from sedflow_jax.io.catalog import read_catalogue

    cat = read_catalogue(EXAMPLE, CatalogColumns(id="id"), redshift_range=posterior.redshift_range)
    extra = {k: v for k, v in cat.table.items() if k.startswith("true_")}
    infer_catalog(posterior, cat, tmp_path / "m.h5", CONFIG, extra=extra)
    diff = compare_posterior_files(reference[0], tmp_path / "m.h5")
    assert diff == ["attrs/catalogue"]  # a digest of the arrays instead of the file's name and size
    f = read_posterior_file(tmp_path / "m.h5", samples=False, names=["median"])
    assert sorted(f) == ["attrs", "median"] and np.isfinite(f["median"][0]).all()
