"""Smoke test of the benchmark scripts: tiny arguments, JSON schema only (timings are not checked)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._shared import in_ci

ROOT = Path(__file__).resolve().parents[1]


def _require(mod, why):
    if importlib.util.find_spec(mod) is None:
        if in_ci():
            pytest.fail(f"CI=true but {mod} is not installed ({why})")
        pytest.skip(f"{mod} is not installed ({why})")


@pytest.mark.slow
def test_bench_model_quick(tmp_path, bc03_default_path):
    _require("dsps", "the benchmark's DSPS baseline")
    env = dict(os.environ, SEDFLOW_JAX_CACHE=str(Path(bc03_default_path).parent))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_model.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads((tmp_path / "bench_model.json").read_text())
    assert {"cpu_model", "n_cores", "jax_version", "device_kind", "platform"} <= set(data["machine"])
    names = {r["name"] for r in data["records"]}
    assert {"seds_per_s", "seds_per_s_ratio_vs_dsps", "compile_s", "grad_per_s"} <= names
    for r in data["records"]:
        assert set(r) == {"name", "value", "unit", "params"}
        assert isinstance(r["value"], float) and r["value"] >= 0
    methods = {(r["params"]["method"], r["params"]["dtype"]) for r in data["records"] if r["name"] == "seds_per_s"}
    assert methods == {("sedflow_jax", "float32"), ("sedflow_jax", "float64"), ("dsps", "float64")}
    assert (tmp_path / "bench_model.png").stat().st_size > 0
