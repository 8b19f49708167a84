"""Sample files, the ``sedflow-jax validate`` CLI and the figures, on tiny inputs."""

import json

import h5py
import numpy as np
import pytest

from sedflow_jax.cli.main import main
from sedflow_jax.validation import read_samples_file, sbc_ranks, tarp_coverage, write_samples_file

from .conftest import gaussian_toy


@pytest.fixture(scope="module")
def small_toy():
    return gaussian_toy(11, n_gal=60, n_draw=200)


def test_samples_file_round_trip(tmp_path, small_toy):
    samples, truth = small_toy
    path = write_samples_file(tmp_path / "s.h5", samples, truth, ["a", "b"])
    with h5py.File(path, "r") as fh:
        assert fh["samples"].shape == (60, 200, 2)  # galaxy-major on disk
    sf = read_samples_file(path)
    np.testing.assert_array_equal(sf.samples, samples)
    np.testing.assert_array_equal(sf.truth, truth)
    assert sf.param_names == ("a", "b")


def test_samples_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_samples_file(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "x.h5", "w") as fh:
        fh["draws"] = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="no 'samples' dataset"):
        read_samples_file(tmp_path / "x.h5")
    with h5py.File(tmp_path / "y.h5", "w") as fh:
        fh["samples"] = np.zeros((2, 3, 4))
        fh["truth"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match="'truth' must be"):
        read_samples_file(tmp_path / "y.h5")


def test_cli_calibration(tmp_path, small_toy, capsys):
    path = write_samples_file(tmp_path / "s.h5", *small_toy, ["a", "b"])
    out = tmp_path / "cal.json"
    assert main(["validate", "calibration", str(path), "--json", str(out), "--plots", str(tmp_path / "p"),
                 "--bootstrap", "10"]) == 0
    text = capsys.readouterr().out
    assert "KS p" in text and "TARP: ATC" in text
    summary = json.loads(out.read_text())
    assert len(summary["ks_pvalue"]) == 2 and summary["n_gal"] == 60
    for name in ("sbc.png", "pp.png", "tarp.png"):
        assert (tmp_path / "p" / name).stat().st_size > 0


def test_cli_calibration_needs_truth(tmp_path, small_toy, capsys):
    path = write_samples_file(tmp_path / "s.h5", small_toy[0])
    assert main(["validate", "calibration", str(path)]) == 2
    assert "no 'truth' dataset; pass --truth" in capsys.readouterr().err
    np.save(tmp_path / "t.npy", small_toy[1])
    assert main(["validate", "calibration", str(path), "--truth", str(tmp_path / "t.npy"), "--bootstrap", "0"]) == 0


def test_cli_compare(tmp_path, small_toy, capsys):
    pytest.importorskip("sklearn")
    samples, truth = small_toy
    a = write_samples_file(tmp_path / "a.h5", samples, truth)
    b = write_samples_file(tmp_path / "b.h5", samples[::-1] + 0.01, truth)
    out = tmp_path / "cmp.json"
    assert main(["validate", "compare", str(a), str(b), "--galaxies", "0", "3", "--classifier", "gbt",
                 "--json", str(out), "--corner", str(tmp_path / "c")]) == 0
    rows = json.loads(out.read_text())["galaxies"]
    assert [r["galaxy"] for r in rows] == [0, 3] and all(r["c2st"] < 0.7 for r in rows)
    assert (tmp_path / "c" / "corner_3.png").stat().st_size > 0
    assert main(["validate", "compare", str(a), str(b), "--galaxies", "99", "--no-c2st"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_sbc_plot_with_many_parameters(tmp_path):
    from sedflow_jax.validation.plots import plot_sbc_histograms, plot_tarp

    samples, truth = gaussian_toy(12, n_gal=40, n_draw=50, n_param=5)
    ranks = sbc_ranks(samples, truth)
    assert plot_sbc_histograms(ranks, tmp_path / "sbc5.png").stat().st_size > 0
    res = tarp_coverage(samples, truth, n_bootstrap=0)
    assert plot_tarp(res, tmp_path / "t.png").stat().st_size > 0
