"""``sedflow-jax nuts`` on a two-galaxy CSV with tiny settings: files, summary, exit code, resume."""

from __future__ import annotations

import csv

import numpy as np


def test_cli_nuts_csv(galaxy, tmp_path, capsys):
    from sedflow_jax.cli.main import main

    flux, ivar, z, _ = galaxy
    bands = ["sdss2010-u", "sdss2010-g", "sdss2010-r", "sdss2010-i", "sdss2010-z"]
    cat = tmp_path / "cat.csv"
    with open(cat, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["id", "redshift"] + [f"flux_{b}" for b in bands] + [f"ivar_{b}" for b in bands])
        for gid in ("a", "b"):
            wr.writerow([gid, z, *flux, *ivar])
    out = tmp_path / "out"
    args = ["nuts", str(cat), "--out", str(out), "--num-warmup", "30", "--num-samples", "20", "--num-chains", "2",
            "--max-extensions", "0"]
    rc = main(args)
    assert rc == 3  # 40 draws cannot converge: reported, not hidden
    assert (out / "galaxy_a.nc").exists() and (out / "galaxy_b.nc").exists()
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["galaxy_id"] for r in rows] == ["a", "b"] and all(r["converged"] == "0" for r in rows)
    assert np.isfinite(float(rows[0]["median_log10_mstar_formed"]))
    assert "NOT CONVERGED" in capsys.readouterr().out
    assert main(args) == 3  # resume: nothing left to do, verdicts kept
    assert "2 already done" in capsys.readouterr().out


def test_cli_nuts_missing_columns(tmp_path, capsys):
    from sedflow_jax.cli.main import main

    cat = tmp_path / "cat.csv"
    cat.write_text("redshift,flux_sdss2010-u\n0.1,1.0\n")
    assert main(["nuts", str(cat), "--out", str(tmp_path / "o")]) == 2  # a user error: one line, no traceback
    assert "missing columns" in capsys.readouterr().err
