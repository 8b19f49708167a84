"""``sedflow-jax ssp build|info``."""

import h5py
import pytest

from sedflow_jax.cli.main import build_parser, main
from sedflow_jax.sps import save_ssp_table, synthetic_ssp_table


def test_info_on_a_file(tmp_path, capsys):
    path = save_ssp_table(synthetic_ssp_table(n_met=2, n_age=4, n_wave=10), tmp_path / "t.h5")
    assert main(["ssp", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(2, 4, 10)" in out and str(path) in out


def test_info_reports_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"nope")
    assert main(["ssp", "info", str(bad)]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err


def test_build_default_into_cache(bc03_fits, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEDFLOW_JAX_CACHE", str(tmp_path))
    assert main(["ssp", "build", "--n-wave", "40", "--wave-min", "3000", "--wave-max", "9000"]) == 0
    path = capsys.readouterr().out.strip()
    assert path.startswith(str(tmp_path))
    with h5py.File(path, "r") as fh:
        assert fh["ssp_flux"].shape == (7, 220, 40)


def test_build_to_out(bc03_fits, tmp_path, capsys):
    out = tmp_path / "sub" / "x.h5"
    assert main(["ssp", "build", "--n-wave", "30", "--wave-min", "3000", "--wave-max", "9000", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.is_file()


def test_fsps_build_without_fsps(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("SPS_HOME", raising=False)
    assert main(["ssp", "build", "--kind", "fsps", "--out", str(tmp_path / "f.h5")]) == 2
    assert "SPS_HOME" in capsys.readouterr().err


def test_parser_requires_subcommand():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ssp"])
