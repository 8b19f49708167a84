import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_anpe_quick(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_anpe.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "bench_anpe.json").read_text())
    names = {r["name"] for r in data["records"]}
    assert {"train_seconds_per_epoch", "samples_per_s", "seconds_per_galaxy"} <= names
    for r in data["records"]:
        assert set(r) == {"name", "value", "unit", "params"} and "device" in r["params"]
