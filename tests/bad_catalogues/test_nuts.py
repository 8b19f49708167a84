"""``sedflow-jax nuts`` on bad catalogues (issue 17, rows 5 and 6; CSV errors; ``--rows``).

These tests are about the command's reading, screening and bookkeeping, not about NUTS: every test
that gets as far as fitting monkeypatches ``sedflow_jax.mcmc.run_nuts_batch`` (a fake that records the
galaxies it was given and yields converged fake results) and ``sedflow_jax.model.ProvabgsModel`` (a stub
whose ``build`` records z_max), so no model is built and nothing is compiled. The real path is covered
by ``tests/mcmc/test_cli.py``.
"""

from __future__ import annotations

import csv
from types import SimpleNamespace

import jax  # noqa: F401  (imported first, so the command's expose_cpu_cores leaves XLA_FLAGS alone)
import numpy as np
import pytest

from sedflow_jax.cli.main import main
from sedflow_jax.params import THETA_NAMES

BANDS = ["sdss2010-u", "sdss2010-g", "sdss2010-r", "sdss2010-i", "sdss2010-z"]
HEADER = ["id", "redshift"] + [f"flux_{b}" for b in BANDS] + [f"ivar_{b}" for b in BANDS]
FLUX = ["1.5", "4.0", "8.0", "11.0", "14.0"]
IVAR = ["10", "100", "100", "100", "10"]


def good_row(gid, z="0.08"):
    return [gid, z, *FLUX, *IVAR]


def write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(header)
        wr.writerows(rows)
    return path


class FakeResult:
    converged = True
    diagnostics = {"max_rhat": 1.001, "min_ess_bulk": 900.0, "min_ess_tail": 800.0, "n_divergent": 0, "wall_s": 0.1,
                   "p_burst_on": 0.2, "n_gradient_evals_total": 1000, "reasons": []}
    idata = SimpleNamespace(posterior={"theta": np.ones((2, 3, len(THETA_NAMES)))})

    def to_netcdf(self, path):
        path.write_text("fake")


@pytest.fixture
def fake_nuts(monkeypatch):
    """Replace the NUTS run and the model build; returns the record of what they were called with."""
    import sedflow_jax.mcmc
    import sedflow_jax.model

    calls = SimpleNamespace(runs=[], z_max=[])

    def fake_run_nuts_batch(key, flux, ivar, z, *, galaxy_ids, **kw):
        calls.runs.append(SimpleNamespace(ids=list(galaxy_ids), flux=np.array(flux), ivar=np.array(ivar),
                                          z=np.array(z)))
        for j in range(len(galaxy_ids)):
            yield j, FakeResult()

    class StubModel:
        @classmethod
        def build(cls, ssp, basis, filters, *, z_max):
            calls.z_max.append(z_max)
            return "model"

    monkeypatch.setattr(sedflow_jax.mcmc, "run_nuts_batch", fake_run_nuts_batch)
    monkeypatch.setattr(sedflow_jax.model, "ProvabgsModel", StubModel)
    return calls


def summary(out):
    with open(out / "summary.csv", newline="") as fh:
        return {r["galaxy_id"]: r for r in csv.DictReader(fh)}


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.startswith("sedflow-jax nuts: error: ") and err.count("\n") == 1, err
    return err


def test_repeated_ids_are_an_error_before_any_work(tmp_path, fake_nuts, capsys):
    """Row 5: outputs are keyed by id, so a repeated id (anywhere in the file, not only in --rows) stops the
    run before anything is fitted or written, naming the id and its rows/lines."""
    cat = write_csv(tmp_path / "cat.csv", [good_row("a"), good_row("b"), good_row("a"), good_row("c")])
    out = tmp_path / "out"
    assert main(["nuts", str(cat), "--out", str(out), "--rows", "0:2"]) == 2
    err = one_line_error(capsys)
    assert "'a' at row 0, row 2" in err and "unique" in err
    assert fake_nuts.runs == [] and not out.exists()


@pytest.mark.parametrize(("gid", "what"), [("", "empty id"), ("x/../../y", "cannot be a file name"),
                                           ("a\\b", "cannot be a file name"), ("..", "cannot be a file name")])
def test_ids_that_cannot_name_a_file_are_an_error(tmp_path, fake_nuts, capsys, gid, what):
    """Row 5: an empty id or one with a path separator names its row; nothing runs."""
    cat = write_csv(tmp_path / "cat.csv", [good_row("a"), good_row(gid)])
    assert main(["nuts", str(cat), "--out", str(tmp_path / "out")]) == 2
    err = one_line_error(capsys)
    assert what in err and "row 1" in err
    assert fake_nuts.runs == []


def test_ids_are_kept_as_read(tmp_path, fake_nuts):
    """Ids are strings as in the file, never through a float: '007', '7' and '7.0' are three galaxies."""
    cat = write_csv(tmp_path / "cat.csv", [good_row("007"), good_row("7"), good_row("7.0")])
    out = tmp_path / "out"
    assert main(["nuts", str(cat), "--out", str(out)]) == 0
    assert fake_nuts.runs[0].ids == ["007", "7", "7.0"]
    assert sorted(p.name for p in out.glob("galaxy_*.nc")) == ["galaxy_007.nc", "galaxy_7.0.nc", "galaxy_7.nc"]
    assert sorted(summary(out)) == ["007", "7", "7.0"]


def test_bad_rows_are_reported_and_the_good_ones_fitted(tmp_path, fake_nuts, capsys):
    """Row 6: each bad row is not fitted, gets converged=0 and its reason in summary.csv and a printed line
    naming it; the good rows (a masked band with a NaN flux is good) run, with the NaN replaced; exit code 3.
    A resumed run skips the fitted galaxies and reports the bad rows again."""
    rows = [good_row("a"),
            ["neg_ivar", "0.08", *FLUX, "-1", *IVAR[1:]],
            ["nan_flux", "0.08", "nan", *FLUX[1:], *IVAR],
            good_row("nan_z", z="nan"),
            good_row("far", z="50"),
            good_row("neg_z", z="-0.1"),
            ["all_masked", "0.08", *FLUX, *["0"] * 5],
            ["inf_ivar", "0.08", *FLUX, *IVAR[:4], "inf"],
            ["masked_nan", "0.3", "nan", *FLUX[1:], "0", *IVAR[1:]],
            ["empty_ivar", "0.08", *FLUX, *IVAR[:2], "", *IVAR[3:]],
            good_row("b", z="0.05")]
    cat = write_csv(tmp_path / "cat.csv", rows)
    out = tmp_path / "out"
    assert main(["nuts", str(cat), "--out", str(out)]) == 3
    (run,) = fake_nuts.runs
    assert run.ids == ["a", "masked_nan", "b"] and np.all(np.isfinite(run.flux)) and run.flux[1, 0] == 0.0
    assert fake_nuts.z_max == [pytest.approx(0.3)]  # from the good rows: z = 50 does not break the build
    s = summary(out)
    expect = {"neg_ivar": "ivar_sdss2010-u < 0", "nan_flux": "flux_sdss2010-u not finite",
              "nan_z": "redshift not finite", "far": "redshift 50 outside [0, 3]", "neg_z": "redshift -0.1 outside",
              "all_masked": "no band has ivar > 0", "inf_ivar": "ivar_sdss2010-z not finite",
              "empty_ivar": "ivar_sdss2010-r not finite"}
    for gid, reason in expect.items():
        assert s[gid]["converged"] == "0" and s[gid]["failures"].startswith("bad input: ")
        assert reason in s[gid]["failures"], (gid, s[gid]["failures"])
    assert all(s[g]["converged"] == "1" and s[g]["median_log10_mstar_formed"] == "1" for g in ("a", "masked_nan", "b"))
    printed = capsys.readouterr().out
    assert "galaxy neg_ivar (row 1): NOT FITTED: bad input: ivar_sdss2010-u < 0" in printed
    assert sorted(p.name for p in out.glob("*.nc")) == ["galaxy_a.nc", "galaxy_b.nc", "galaxy_masked_nan.nc"]
    assert main(["nuts", str(cat), "--out", str(out)]) == 3  # resume: nothing fitted again, same summary
    assert len(fake_nuts.runs) == 1 and summary(out) == s


def test_summary_is_written_when_the_run_stops(tmp_path, fake_nuts, monkeypatch):
    """A run that fails after the first galaxy keeps that galaxy's summary row (its .nc exists, so a resumed
    run would skip it and its verdict would otherwise be lost)."""
    import sedflow_jax.mcmc

    def failing(key, flux, ivar, z, *, galaxy_ids, **kw):
        yield 0, FakeResult()
        raise RuntimeError("device lost")

    monkeypatch.setattr(sedflow_jax.mcmc, "run_nuts_batch", failing)
    cat = write_csv(tmp_path / "cat.csv", [good_row("a"), good_row("b")])
    with pytest.raises(RuntimeError, match="device lost"):
        main(["nuts", str(cat), "--out", str(tmp_path / "out")])
    assert list(summary(tmp_path / "out")) == ["a"]


@pytest.mark.parametrize(("line3", "expect"), [
    ("b,0.08,abc,4,8,11,14,10,100,100,100,10", "line 3, column 'flux_sdss2010-u': 'abc' is not a number"),
    ("b,0.08,1.5,4,8,11,14,10,100", "line 3: 9 fields, the header has 12"),
    ("b,0.08,1.5,4,8,11,14,10,100,100,100,10,99", "line 3: 13 fields, the header has 12"),
])
def test_malformed_csv_lines_are_an_error_naming_line_and_column(tmp_path, fake_nuts, capsys, line3, expect):
    """A non-numeric field, or a line with more or fewer fields than the header: one line naming it."""
    cat = tmp_path / "cat.csv"
    cat.write_text(",".join(HEADER) + "\n" + ",".join(good_row("a")) + "\n" + line3 + "\n")
    assert main(["nuts", str(cat), "--out", str(tmp_path / "out")]) == 2
    assert expect in one_line_error(capsys)
    assert fake_nuts.runs == []


def test_repeated_column_is_an_error(tmp_path, fake_nuts, capsys):
    cat = write_csv(tmp_path / "cat.csv", [good_row("a") + ["0.1"]], header=HEADER + ["redshift"])
    assert main(["nuts", str(cat), "--out", str(tmp_path / "out")]) == 2
    assert "repeats column(s) ['redshift']" in one_line_error(capsys)


@pytest.mark.parametrize("rows", ["abc", "5", "1:2:3", "a:3", "3:1"])
def test_bad_rows_argument_is_an_error_naming_it(tmp_path, fake_nuts, capsys, rows):
    """``--rows`` must be START:STOP and select at least one row."""
    cat = write_csv(tmp_path / "cat.csv", [good_row("a"), good_row("b")])
    assert main(["nuts", str(cat), "--out", str(tmp_path / "out"), "--rows", rows]) == 2
    assert "--rows" in one_line_error(capsys)
    assert fake_nuts.runs == []


def test_rows_without_id_column_are_numbered_in_the_file(tmp_path, fake_nuts):
    """Without an id column the id is the row number in the file, so two --rows slices never share ids."""
    header = [c for c in HEADER if c != "id"]
    cat = write_csv(tmp_path / "cat.csv", [good_row(str(i))[1:] for i in range(4)], header=header)
    assert main(["nuts", str(cat), "--out", str(tmp_path / "out"), "--rows", "2:"]) == 0
    assert fake_nuts.runs[0].ids == ["2", "3"]


def test_simulated_set_rows_are_screened(tmp_path, fake_nuts, monkeypatch, capsys):
    """A simulated set (HDF5; its reader is monkeypatched to return arrays): a NaN or negative sigma is a bad
    row, not a masked band; sigma 0 masks the band; ids are the row numbers in the set, truth follows the rows."""
    import sedflow_jax.simulate

    sig = np.full((4, 5), 0.1)
    sig[1, 2], sig[2, 0], sig[3, 4] = np.nan, -0.1, 0.0
    data = {"flux_obs_nmgy": np.ones((4, 5)), "sigma_flux_nmgy": sig, "redshift": np.full(4, 0.1),
            "theta": np.arange(4.0)[:, None] * np.ones((4, len(THETA_NAMES)))}
    monkeypatch.setattr(sedflow_jax.simulate, "load_training_set", lambda path, **kw: data)
    seen = {}

    def fake(key, flux, ivar, z, *, galaxy_ids, truth, **kw):
        seen.update(ids=list(galaxy_ids), ivar=np.array(ivar), truth=np.array(truth))
        yield from ((j, FakeResult()) for j in range(len(galaxy_ids)))

    monkeypatch.setattr(sedflow_jax.mcmc, "run_nuts_batch", fake)
    out = tmp_path / "out"
    assert main(["nuts", str(tmp_path / "sim.h5"), "--out", str(out)]) == 3
    assert seen["ids"] == ["0", "3"] and seen["ivar"][1, 4] == 0.0 and seen["truth"][:, 0].tolist() == [0.0, 3.0]
    s = summary(out)
    assert "sigma_flux_nmgy[sdss2010-r] not finite" in s["1"]["failures"]
    assert "sigma_flux_nmgy[sdss2010-u] < 0" in s["2"]["failures"]
    assert "galaxy 2 (row 2): NOT FITTED" in capsys.readouterr().out
