"""The posterior file: written by the pipeline's writer, read back by its reader, with a schema version."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from sedflow_jax.errors import InputError
from sedflow_jax.flags import FLAGS
from sedflow_jax.params import DERIVED_NAMES, THETA_NAMES
from sedflow_jax.pipeline import SCHEMA_VERSION, PosteriorFileWriter, RowResults, read_posterior_file


def _results(n=5):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 11)).astype(np.float32)
    flags = np.array([0, FLAGS["missing_value"], 0, FLAGS["outside_support"], 0], np.uint8)[:n]
    valid = (flags & FLAGS["missing_value"]) == 0
    res = RowResults.empty(x, flags, rng.uniform(size=n).astype(np.float32), valid, properties=True)
    res.median[valid] = 1.0
    res.derived[0][valid] = 2.0
    res.is_status[0] = "reliable"
    res.fallback_trigger[3] = "support"
    return res


def _attrs(n, **kw):
    """The run attributes PosteriorFileWriter.finish takes (layout.FILE_ATTRS), rows 10 .. 10 + n."""
    base = {"n_samples": 4, "seed": 0, "support_threshold": 1.0, "model": {}, "row_start": 10, "row_stop": 10 + n,
            "counts": {"n_rows": n}, "settings": {}, "catalogue": {"name": "c.csv"}}
    return {**base, **kw}


def test_write_then_read_back(tmp_path):
    res = _results()
    n, s = len(res), 7
    samples = np.arange(n * s * 12, dtype=np.float32).reshape(n, s, 12)
    with h5py.File(tmp_path / "p.h5", "w") as fh:
        w = PosteriorFileWriter(fh, n, s)
        w.write_samples(np.array([0, 2, 3, 4]), samples[[0, 2, 3, 4]])  # two contiguous runs
        w.write_row(3, samples[3] + 1)
        w.finish(res, attrs=_attrs(n, n_samples=s, seed=3, support_threshold=1.5, model={"name": "t"}),
                 ids=np.array(["a", "b", "c", "d", "e"]), extra={"true_m": np.arange(n)},
                 importance={"n_proposal": 64}, fallback={"limit": 1})
    out = read_posterior_file(tmp_path / "p.h5")
    a = out["attrs"]
    assert a["schema_version"] == SCHEMA_VERSION == 2
    assert a["row_start"] == 10 and a["row_stop"] == 10 + n and a["counts"] == {"n_rows": n}
    assert a["param_names"] == list(THETA_NAMES) and a["flag_bits"] == FLAGS and a["seed"] == 3
    assert a["importance"] == {"n_proposal": 64} and a["fallback"] == {"limit": 1} and a["model"] == {"name": "t"}
    assert out["samples"].shape == (n, s, 12) and out["samples"].dtype == np.float32
    assert np.all(np.isnan(out["samples"][1]))  # never written: NaN fill
    np.testing.assert_array_equal(out["samples"][[0, 2, 4]], samples[[0, 2, 4]])
    np.testing.assert_array_equal(out["samples"][3], samples[3] + 1)
    for name in ("flags", "support_score", "x", "median", "p16", "p84", "is_ess", "is_pareto_k", "chi2_best"):
        np.testing.assert_array_equal(out[name], getattr(res, name))
    assert out["flags"].dtype == np.uint8 and out["x"].dtype == np.float32
    assert out["flag_reason"].tolist() == ["", "missing_value", "", "outside_support", ""]
    assert out["method"].tolist() == ["anpe", "", "anpe", "anpe", "anpe"]
    assert out["is_status"][0] == "reliable" and out["fallback_trigger"][3] == "support"
    assert out["id"].tolist() == ["a", "b", "c", "d", "e"] and out["input/true_m"].tolist() == list(range(n))
    assert out["derived/median"].shape == (n, len(DERIVED_NAMES))
    with h5py.File(tmp_path / "p.h5") as fh:
        assert json.loads(fh["derived"].attrs["names"]) == list(DERIVED_NAMES)
    assert "samples" not in read_posterior_file(tmp_path / "p.h5", samples=False)


def test_optional_parts_absent_and_newer_schema_refused(tmp_path):
    res = _results()
    res.derived = None
    with h5py.File(tmp_path / "p.h5", "w") as fh:
        PosteriorFileWriter(fh, len(res), 4, write_samples=False).finish(
            res, attrs=_attrs(len(res), n_samples=4, support_threshold=np.nan))
    out = read_posterior_file(tmp_path / "p.h5")
    for name in ("samples", "is_ess", "is_status", "fallback_status", "chi2_best", "derived/median", "id"):
        assert name not in out
    with h5py.File(tmp_path / "p.h5", "a") as fh:
        fh.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(InputError, match="schema"):
        read_posterior_file(tmp_path / "p.h5")
    with h5py.File(tmp_path / "other.h5", "w") as fh:
        fh["theta"] = np.zeros(3)
    with pytest.raises(InputError, match="not a posterior file"):
        read_posterior_file(tmp_path / "other.h5")
