"""DSPS reads our files.

``import dsps`` switches JAX to float64 globally, so DSPS runs in a subprocess.
"""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from sedflow_jax.sps import save_ssp_table, synthetic_ssp_table

_READER = """
import json, sys
import numpy as np
from dsps.data_loaders import load_ssp_templates
d = load_ssp_templates(fn=sys.argv[1])
print(json.dumps({
    "shapes": [list(np.shape(d.ssp_lgmet)), list(np.shape(d.ssp_lg_age_gyr)),
               list(np.shape(d.ssp_wave)), list(np.shape(d.ssp_flux))],
    "lgmet": np.asarray(d.ssp_lgmet).tolist(),
    "flux_sum": float(np.sum(np.asarray(d.ssp_flux, dtype=np.float64))),
}))
"""


@pytest.mark.skipif(importlib.util.find_spec("dsps") is None, reason="dsps (test extra) is not installed")
def test_dsps_loader_reads_our_file(tmp_path):
    table = synthetic_ssp_table(n_met=3, n_age=8, n_wave=50)
    path = save_ssp_table(table, tmp_path / "ours.h5")
    proc = subprocess.run(
        [sys.executable, "-c", _READER, str(path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shapes"] == [[3], [8], [50], [3, 8, 50]]
    np.testing.assert_allclose(out["lgmet"], table.log10_zmet)
    expect = float(np.sum(table.lnu_lsun_per_hz_per_msun.astype(np.float32).astype(np.float64)))
    np.testing.assert_allclose(out["flux_sum"], expect, rtol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("dsps") is None, reason="dsps (test extra) is not installed")
def test_dsps_loader_reads_default_bc03_table(bc03_default_path):
    proc = subprocess.run(
        [sys.executable, "-c", _READER, str(bc03_default_path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["shapes"] == [[7], [220], [2000], [7, 220, 2000]]
