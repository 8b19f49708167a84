"""The FSPS builder fails clearly when python-fsps or its data are unavailable."""

import importlib.util

import pytest

from sedflow_jax.errors import InputError
from sedflow_jax.sps import build_fsps_table


def test_missing_sps_home_is_an_input_error(monkeypatch):
    monkeypatch.delenv("SPS_HOME", raising=False)
    with pytest.raises(InputError, match=r"SPS_HOME is not set.*pip install fsps"):
        build_fsps_table(n_wave=10)


@pytest.mark.skipif(importlib.util.find_spec("fsps") is not None, reason="python-fsps is installed")
def test_missing_fsps_raises_runtime_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SPS_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"cannot import python-fsps.*pip install fsps"):
        build_fsps_table(n_wave=10)
