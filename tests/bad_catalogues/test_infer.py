"""``sedflow-jax infer`` on the catalogues real surveys produce (issue 17, rows 1-4 and 8-13).

Every test feeds one kind of bad input through the command (:func:`sedflow_jax.cli.main.main`) with the shipped
default flow and few samples, and checks what the user gets: a per-row flag with a reason, or one line naming
the file, column, line or argument (exit code 2) before any work. The table in README.md ("Bad rows and bad
files") lists the same cases.
"""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from sedflow_jax.cli.main import main
from sedflow_jax.io.catalog import CatalogColumns, CatalogueReader, read_catalogue
from sedflow_jax.pipeline import read_posterior_file

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "sedflow_jax", "data", "example_catalog.csv")
LINES = [s for s in open(EXAMPLE).read().splitlines() if s and not s.startswith("#")]
HEADER, BODY = LINES[0], LINES[1:41]  # the example's first 40 rows (row 10: NaN r magnitude)
COLS = HEADER.split(",")


def write(path, header=HEADER, body=BODY, prefix=""):
    path.write_text(prefix + "\n".join([header, *body]) + "\n")
    return path


def infer(cat, out, *args):
    return main(["infer", str(cat), "--out", str(out), "--n-samples", "10", "--no-progress", *args])


def edit(body, row, column, value):
    """``body`` with one cell replaced."""
    out = list(body)
    cells = out[row].split(",")
    cells[COLS.index(column)] = value
    out[row] = ",".join(cells)
    return out


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


# ---------------------------------------------------------------- row 1: ids
def test_row1_19_digit_ids_are_carried_exactly(tmp_path):
    ids = [1237648720693755918 + i for i in range(len(BODY))]
    body = [f"{i}{s[s.index(','):]}" for i, s in zip(ids, BODY)]
    cat = write(tmp_path / "objid.csv", body=body)
    assert infer(cat, tmp_path / "p.h5", "--id-col", "id") == 0
    got = read_posterior_file(tmp_path / "p.h5", samples=False)["id"]
    assert got.dtype == np.int64 and got.tolist() == ids  # float64 would merge them into a handful of values


@pytest.mark.parametrize("ids", [["007", "7", "+8"], ["a1", "", "3"], ["1.5", "2", "#3"]])
def test_row1_other_ids_stay_text_as_read(tmp_path, ids):
    """Leading zeros, signs, decimals, an empty id, one starting with '#': the text as read, in /id."""
    body = [f"{i}{s[s.index(','):]}" for i, s in zip(ids, BODY[:3])]
    assert infer(write(tmp_path / "t.csv", body=body), tmp_path / "p.h5", "--id-col", "id") == 0
    f = read_posterior_file(tmp_path / "p.h5", samples=False)
    assert f["id"].tolist() == ids and f["attrs"]["counts"]["n_rows"] == 3


def test_row1_a_row_of_empty_fields_is_kept_and_flagged(tmp_path):
    body = [BODY[0], "," * (len(COLS) - 1), BODY[1]]
    assert infer(write(tmp_path / "e.csv", body=body), tmp_path / "p.h5") == 0
    assert read_posterior_file(tmp_path / "p.h5", samples=False)["flag_reason"].tolist() == ["", "missing_value", ""]


# ---------------------------------------------------------------- row 2: the redshift range's edge
@pytest.mark.parametrize("extra", [["--properties"], ["--fallback", "nuts", "--fallback-limit", "0"]])
def test_row2_redshift_at_the_range_edge_is_inferred(tmp_path, extra):
    body = edit(edit(BODY[:4], 0, "z", "0.2"), 1, "z", "0.2000002")
    assert infer(write(tmp_path / "z.csv", body=body), tmp_path / "p.h5", *extra) == 0
    f = read_posterior_file(tmp_path / "p.h5", samples=False)
    assert f["flag_reason"][0] == "" and np.isfinite(f["median"][0]).all()  # 0.2 is inside [0, 0.2]
    assert f["flag_reason"][1] == "redshift_outside_range"  # above 0.2 in float32 too


# ---------------------------------------------------------------- row 3: sentinels
@pytest.mark.parametrize("sentinel", ["99", "-99", "-9999", "99.0"])
def test_row3_magnitude_sentinels_are_missing_values(tmp_path, sentinel):
    body = edit(BODY[:4], 2, "mag_u", sentinel)
    assert infer(write(tmp_path / "s.csv", body=body), tmp_path / "p.h5") == 0
    f = read_posterior_file(tmp_path / "p.h5")
    assert f["flag_reason"][2] == "missing_value" and f["method"][2] == ""
    assert np.isnan(f["samples"][2]).all() and np.isfinite(f["samples"][[0, 1, 3]]).all()
    assert f["attrs"]["counts"]["n_invalid"] == 1


# ---------------------------------------------------------------- row 4: the id column
def test_row4_absent_id_column_is_an_error(tmp_path, capsys):
    assert infer(write(tmp_path / "c.csv"), tmp_path / "p.h5", "--id-col", "objid") == 2
    one_line_error(capsys, "'objid'", "--id-col")
    assert not (tmp_path / "p.h5").exists()


def test_row4_header_with_byte_order_mark(tmp_path):
    cat = write(tmp_path / "bom.csv", prefix="\ufeff")
    assert infer(cat, tmp_path / "p.h5", "--id-col", "id") == 0
    assert read_posterior_file(tmp_path / "p.h5", samples=False)["id"].tolist() == list(range(len(BODY)))


# ---------------------------------------------------------------- row 8: --out is the input
def test_row8_out_equal_to_the_input_is_refused(tmp_path, capsys):
    cat = write(tmp_path / "c.csv")
    before = cat.read_bytes()
    os.symlink(cat, tmp_path / "link.csv")
    for out in (cat, tmp_path / "link.csv"):
        assert infer(cat, out) == 2
        one_line_error(capsys, "input catalogue")
    assert cat.read_bytes() == before


# ---------------------------------------------------------------- row 9: malformed lines
@pytest.mark.parametrize("change, needle", [(lambda s: s + ",7", "line 5: 25 fields"),
                                            (lambda s: s[: s.rindex(",")], "line 5: 23 fields")])
def test_row9_a_line_with_a_field_too_many_or_few(tmp_path, capsys, change, needle):
    body = list(BODY)
    body[3] = change(body[3])
    assert infer(write(tmp_path / "c.csv", body=body), tmp_path / "p.h5") == 2
    one_line_error(capsys, needle, "the header has 24")


# ---------------------------------------------------------------- row 10: files and arguments
def _truncated(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.fixture(scope="module")
def binary_catalogues(tmp_path_factory):
    from astropy.table import Table

    d = tmp_path_factory.mktemp("bin")
    t = {k: v for k, v in read_catalogue(write(d / "c.csv")).table.items()}
    Table(t).write(d / "ok.fits")
    with h5py.File(d / "ok.h5", "w") as fh:
        for k, v in t.items():
            fh[k] = v
    (d / "garbage.h5").write_text("not an HDF5 file")
    (d / "garbage.fits").write_text("SIMPLE = nonsense")
    _truncated(d / "ok.h5", d / "truncated.h5")
    _truncated(d / "ok.fits", d / "truncated.fits")
    return d


@pytest.mark.parametrize("name, needle", [("garbage.h5", "not a readable HDF5"), ("truncated.h5", "not a readable HDF5"),
                                          ("garbage.fits", "not a readable FITS"),
                                          ("truncated.fits", "not a readable FITS")])
def test_row10_damaged_binary_catalogues(binary_catalogues, tmp_path, capsys, name, needle):
    assert infer(binary_catalogues / name, tmp_path / "p.h5") == 2
    one_line_error(capsys, name, needle)


def test_row10_good_binary_catalogues_stream_like_the_csv(binary_catalogues, tmp_path):
    """FITS and HDF5 (ids as bytes, a longer unrelated dataset beside the columns) read in chunks give the
    CSV's rows: flags, x and ids."""
    d = binary_catalogues
    with h5py.File(d / "ok.h5", "r") as src, h5py.File(tmp_path / "bytes.h5", "w") as dst:
        for k in src:
            dst[k] = src[k][()] if k != "id" else np.array([f"g{i}".encode() for i in src[k][()]])
        dst["wavelength_aa"] = np.linspace(3000, 9000, 500)
    ref = read_posterior_file(_run(d / "c.csv", tmp_path / "csv.h5"), samples=False)
    for cat in (d / "ok.fits", d / "ok.h5", tmp_path / "bytes.h5"):
        f = read_posterior_file(_run(cat, tmp_path / f"{cat.name}.out.h5"), samples=False)
        np.testing.assert_array_equal(f["flags"], ref["flags"])
        np.testing.assert_array_equal(f["x"], ref["x"])
        np.testing.assert_array_equal(f["median"], ref["median"])  # same rows, same keys: same draws
        want = [f"g{i}" for i in range(len(BODY))] if cat.name == "bytes.h5" else list(range(len(BODY)))
        assert f["id"].tolist() == want


def _run(cat, out):
    assert infer(cat, out, "--id-col", "id", "--chunk-rows", "16") == 0
    return out


def _out_below_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    return tmp_path / "afile" / "p.h5"


@pytest.mark.parametrize("out, args, needle", [
    (lambda d: d, [], "is a directory"),
    (_out_below_a_file, [], "is a file, not a directory"),
    (lambda d: d / "p.h5", ["--n-samples", "0"], "--n-samples"),
    (lambda d: d / "p.h5", ["--n-samples", "-3"], "--n-samples"),
    (lambda d: d / "p.h5", ["--rows", "5"], "--rows"),
    (lambda d: d / "p.h5", ["--rows", "30:20"], "--rows"),
    (lambda d: d / "p.h5", ["--rows", "0:1000"], "--rows"),
    (lambda d: d / "p.h5", ["--chunk-rows", "0"], "--chunk-rows"),
])
def test_row10_bad_out_and_arguments_fail_before_any_work(tmp_path, capsys, out, args, needle):
    cat = write(tmp_path / "c.csv")
    assert infer(cat, out(tmp_path), *args) == 2
    one_line_error(capsys, needle)
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_row10_unwritable_out_directory(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert infer(write(tmp_path / "c.csv"), ro / "p.h5") == 2
        one_line_error(capsys, "not writable")
    finally:
        ro.chmod(0o700)


# ---------------------------------------------------------------- row 11: text, empty files
def test_row11_text_in_a_numeric_column_names_column_and_line(tmp_path, capsys):
    body = edit(BODY, 6, "mag_g", "abc")
    assert infer(write(tmp_path / "c.csv", body=body), tmp_path / "p.h5") == 2
    one_line_error(capsys, "line 8", "'mag_g'", "'abc' is not a number")


@pytest.mark.parametrize("body, needle", [([], "no data rows"), (None, "empty CSV")])
def test_row11_header_only_and_empty_files(tmp_path, capsys, body, needle):
    cat = tmp_path / "c.csv"
    if body is None:
        cat.write_text("# only a comment\n")
    else:
        write(cat, body=body)
    assert infer(cat, tmp_path / "p.h5") == 2
    one_line_error(capsys, needle)


# ---------------------------------------------------------------- row 12: what a killed run leaves
def test_row12_a_killed_runs_leftovers_are_removed_by_the_next_run(tmp_path):
    cat, out = write(tmp_path / "c.csv"), tmp_path / "p.h5"
    (tmp_path / ".p.h5.k3x_9q2z.tmp").write_bytes(b"\0" * 1000)  # what atomic_path leaves when killed
    (tmp_path / "p.h5.partial").mkdir()
    (tmp_path / "p.h5.partial" / "rows_000000000000_000000000016.h5").write_bytes(b"stale")
    assert infer(cat, out, "--chunk-rows", "16") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "p.h5"]
    assert read_posterior_file(out, samples=False)["attrs"]["counts"]["n_rows"] == len(BODY)


# ---------------------------------------------------------------- row 13: streaming
def test_row13_reader_streams_blocks_cut_at_multiples(tmp_path):
    cat = write(tmp_path / "c.csv")
    with CatalogueReader(cat, CatalogColumns(id="id"), extra_prefix="true_") as r:
        blocks = [(a, b, c.ids.tolist()) for a, b, c in r.blocks(5, 37, 16)]
        assert [(a, b) for a, b, _ in blocks] == [(5, 16), (16, 32), (32, 37)]
        assert sum((ids for *_, ids in blocks), []) == list(range(5, 37))
        assert "true_log10_mstar_formed" in r.extra
