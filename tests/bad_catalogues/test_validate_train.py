"""Bad inputs to ``validate`` and ``train``, and the model on an empty batch (issue 17, rows 7, 10, 11).

* ``validate calibration|compare`` on ``infer``'s own posterior file (param_names a JSON string, NaN rows for
  invalid catalogue rows, truth in /input/true_*), and the errors and printed exclusions around it;
* ``train --out`` into an existing directory, ``--resume`` without a checkpoint, garbage / truncated / corrupt
  training sets: one line, exit 2, before any training (``train_posterior`` is monkeypatched where a test is
  about the CLI's wiring, so no flow is compiled);
* ``photometry_batch`` / ``properties_batch`` with 0 rows: an empty array, nothing compiled.
"""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from sedflow_jax.cli.main import main
from sedflow_jax.errors import InputError
from sedflow_jax.params import THETA_NAMES

BAD_ROWS = (10, 50, 90, 150)  # the example catalogue's deliberately bad rows (scripts/make_example_catalog.py)
N_ROWS = 200


# ---------------------------------------------------------------- validate on infer's output
@pytest.fixture(scope="module")
def posterior_file(tmp_path_factory):
    """``sedflow-jax infer example`` with the shipped default flow, 200 samples per galaxy (a few seconds)."""
    out = tmp_path_factory.mktemp("infer") / "post.h5"
    assert main(["infer", "example", "--out", str(out), "--n-samples", "200", "--no-progress"]) == 0
    return out


def _copy(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as fh:
        edit(fh)
    return dst


def test_calibration_of_infer_output(posterior_file, tmp_path, capsys):
    """The bug: param_names stored as a JSON string by infer. Now: invalid rows excluded with a count, truth from
    /input/true_*, coverage of the calibrated shipped flow close to nominal."""
    summary = tmp_path / "cal.json"
    assert main(["validate", "calibration", str(posterior_file), "--json", str(summary), "--bootstrap", "20"]) == 0
    text = capsys.readouterr().out
    assert f"excluded 4 of {N_ROWS} rows flagged invalid by infer" in text
    s = json.loads(summary.read_text())
    assert s["n_rows"] == N_ROWS and s["n_gal"] == N_ROWS - len(BAD_ROWS) and s["n_draw"] == 200
    assert s["param_names"] == list(THETA_NAMES)
    dev = np.array(s["coverage_max_abs_deviation"])
    assert dev.shape == (12,) and np.all(dev < 0.2), dev  # 196 galaxies: ~0.04 standard error per level
    i68 = s["coverage_levels"].index(0.7)
    assert 0.55 < s["coverage"][i68][0] < 0.85  # log M*, 70% intervals
    assert abs(s["tarp_atc"]) < 0.1


def test_calibration_left_out_parameters_and_rows_are_counted(posterior_file, tmp_path, capsys):
    def edit(fh):
        del fh["input/true_tau_bc"]
        m = fh["input/true_log10_mstar_formed"][:]
        m[[0, 1, 2]] = np.nan
        fh["input/true_log10_mstar_formed"][...] = m

    path = _copy(posterior_file, tmp_path / "partial.h5", edit)
    summary = tmp_path / "cal.json"
    assert main(["validate", "calibration", str(path), "--json", str(summary), "--bootstrap", "0"]) == 0
    text = capsys.readouterr().out
    assert "left out 1 parameters without truth: tau_bc" in text
    assert f"excluded 3 of {N_ROWS} rows without a finite truth (rows [0, 1, 2])" in text
    s = json.loads(summary.read_text())
    assert s["n_gal"] == N_ROWS - 4 - 3 and "tau_bc" not in s["param_names"] and len(s["param_names"]) == 11


@pytest.mark.parametrize("case", ["no_samples", "no_truth"])
def test_calibration_of_infer_output_errors(posterior_file, tmp_path, capsys, case):
    def edit(fh):
        if case == "no_samples":
            del fh["samples"]  # as written by infer --no-samples
        else:
            del fh["input"]

    path = _copy(posterior_file, tmp_path / f"{case}.h5", edit)
    assert main(["validate", "calibration", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    assert ("no /samples: rerun infer without --no-samples" if case == "no_samples"
            else "no /input/true_<param> columns") in err


def test_compare_infer_outputs_skips_invalid_rows(posterior_file, tmp_path, capsys):
    out = tmp_path / "cmp.json"
    assert main(["validate", "compare", str(posterior_file), str(posterior_file), "--galaxies", "0", "10", "20",
                 "--no-c2st", "--json", str(out)]) == 0
    assert "left out 1 of the 3 galaxies to compare" in capsys.readouterr().out
    rows = json.loads(out.read_text())["galaxies"]
    assert [r["galaxy"] for r in rows] == [0, 20]
    assert all(max(r["w_over_sigma"]) < 1e-9 for r in rows)  # a file against itself


def test_sample_file_errors_are_one_line(tmp_path, capsys):
    """param_names as a JSON string in a plain sample file; garbage and mismatched --truth: exit 2, one line."""
    from sedflow_jax.validation import read_samples_file

    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as fh:
        fh["samples"] = np.random.default_rng(0).normal(size=(30, 50, 2))
        fh["truth"] = np.zeros((30, 2))
        fh.attrs["param_names"] = json.dumps(["a", "b"])
    assert read_samples_file(path).param_names == ("a", "b")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5" * 50)
    np.save(tmp_path / "t.npy", np.zeros((29, 2)))
    for argv, msg in ((["validate", "calibration", str(tmp_path / "junk.h5")], "junk.h5 is not a readable HDF5"),
                      (["validate", "calibration", str(path), "--truth", str(tmp_path / "junk.h5")],
                       "--truth " + str(tmp_path / "junk.h5")),
                      (["validate", "calibration", str(path), "--truth", str(tmp_path / "t.npy")],
                       "truth must be (n_gal, n_param) = (30, 2)")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err, err
    with pytest.raises(InputError, match="no 'samples' dataset"):
        read_samples_file(_empty_h5(tmp_path / "e.h5"))


def _empty_h5(path):
    with h5py.File(path, "w") as fh:
        fh["other"] = np.zeros(3)
    return path


# ---------------------------------------------------------------- train: --out and the training set
def _fake_training_set(path, n=64):
    """A complete, readable training set in the simulate format (random numbers; enough for the checks that run
    before training, which are all these tests reach)."""
    from sedflow_jax.simulate.storage import FORMAT, FORMAT_VERSION

    rng = np.random.default_rng(0)
    cols = {"theta": (12,), "theta_flow": (11,), "redshift": (), "flux_nmgy": (5,), "flux_obs_nmgy": (5,),
            "sigma_flux_nmgy": (5,), "x": (11,), "flags": ()}
    with h5py.File(path, "w") as fh:
        for name, shape in cols.items():
            data = np.zeros(n, np.uint8) if name == "flags" else rng.normal(size=(n, *shape)).astype(np.float32)
            fh.create_dataset(name, data=data, chunks=(n, *shape), fletcher32=True)
        fh.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "complete": True, "n_rows": n,
                         "n_committed": n, "n_valid": n,
                         "metadata": json.dumps({"model": {"filters": ["u", "g", "r", "i", "z"]}})})
    return path


@pytest.fixture
def no_training(monkeypatch):
    """``train_posterior`` replaced by a recorder: these tests are about what the CLI refuses before training."""
    import sedflow_jax.anpe

    calls = []

    def fake(data, out, **kw):
        calls.append(out)
        return None, {"best_val_loss": 1.0, "best_epoch": 1, "stop_reason": "max_epochs", "epoch_seconds": [0.1]}

    monkeypatch.setattr(sedflow_jax.anpe, "train_posterior", fake)
    return calls


def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err
    assert err.startswith("sedflow-jax train: error: ") and err.count("\n") == 1, err
    for p in parts:
        assert p in err, err
    return err


@pytest.mark.parametrize("case, message", [
    ("model", "holds a saved model (model.json); training never overwrites one"),
    ("checkpoint", "holds a training checkpoint: pass --resume"),
    ("other", "is not empty (1 entry, e.g. 'notes.txt')"),
    ("file", "exists and is not a directory"),
    ("resume_empty", "--resume needs the checkpoint (checkpoint.json)"),
    ("resume_missing", "--resume needs the checkpoint (checkpoint.json)"),
])
def test_train_refuses_out_before_reading_data(tmp_path, capsys, no_training, case, message):
    """The --out check comes first: the training set given here does not even exist."""
    out = tmp_path / "model"
    if case in ("model", "checkpoint", "other", "resume_empty"):
        out.mkdir()
    name = {"model": "model.json", "checkpoint": "checkpoint.json", "other": "notes.txt"}.get(case)
    if name:
        (out / name).write_text("{}")
    if case == "file":
        out.write_text("x")
    argv = ["train", str(tmp_path / "missing.h5"), "--out", str(out)] + (["--resume"] if "resume" in case else [])
    assert main(argv) == 2
    _one_line_error(capsys, f"--out {out}", message)
    assert not no_training
    if name:
        assert (out / name).read_text() == "{}"  # untouched


def test_train_into_new_or_empty_dir_reaches_training(tmp_path, capsys, no_training):
    ts = _fake_training_set(tmp_path / "ts.h5")
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new"):
        assert main(["train", str(ts), "--out", str(out), "--no-progress"]) == 0
    assert no_training == [str(tmp_path / "empty"), str(tmp_path / "new")]


@pytest.mark.parametrize("case, message", [
    ("missing", "training set not found"),
    ("garbage", "is not a readable HDF5 file"),
    ("truncated", "truncated"),
    ("corrupt", "dataset 'x' is corrupt"),
])
def test_bad_training_set_is_one_line(tmp_path, capsys, no_training, case, message):
    ts = tmp_path / "ts.h5"
    if case == "garbage":
        ts.write_bytes(b"\x89HDF not really" * 100)
    elif case in ("truncated", "corrupt"):
        _fake_training_set(ts, n=4096)
        raw = bytearray(ts.read_bytes())
        if case == "truncated":
            raw = raw[: len(raw) // 2]
        else:
            with h5py.File(ts, "r") as fh:
                offset = fh["x"].id.get_chunk_info(0).byte_offset
            raw[offset + 100 : offset + 108] = b"\xff" * 8
        ts.write_bytes(bytes(raw))
    assert main(["train", str(ts), "--out", str(tmp_path / "model")]) == 2
    _one_line_error(capsys, str(ts), message)
    assert not no_training and not (tmp_path / "model").exists()


# ---------------------------------------------------------------- the model on no rows
def test_batch_with_no_rows_is_empty_and_compiles_nothing():
    from sedflow_jax.model import ProvabgsModel, photometry_batch, properties_batch
    from sedflow_jax.sps.synthetic import synthetic_ssp_table
    from tests.compile_count import count_compiles

    model = ProvabgsModel.build(synthetic_ssp_table(), None, z_max=1.0)
    with count_compiles() as c:
        flux = photometry_batch(model, np.zeros((0, 12)), np.zeros(0))
        props = properties_batch(model, np.zeros((0, 12)), 0.1)
    assert c.count == 0
    assert flux.shape == (0, 5) and props.shape == (0, 5) and flux.dtype == model.dtype
    with pytest.raises(ValueError, match=r"theta must have shape \(n_gal, 12\)"):
        photometry_batch(model, np.zeros((0, 11)), np.zeros(0))
