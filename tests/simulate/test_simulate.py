"""Training-set simulator: determinism, resume, corrupt/partial detection, cut counts, sharding, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import h5py
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from sedflow_jax.simulate import (
    FLAG_BITS,
    SimulationConfig,
    TrainingSetError,
    build_simulator,
    check_training_set,
    describe_flags,
    load_training_set,
    simulate_arrays,
    simulate_to_hdf5,
)

N_SMALL = 5000  # rows: several compiled steps (STEP_ROWS = 2048), a short last one included
CHUNKS = (2048, 6000)  # write units: 3 chunks of 2048 rows / one of 6144 rows


@pytest.fixture(scope="module")
def sim_meta(bc03_table):
    return build_simulator(SimulationConfig(n=N_SMALL, seed=3), ssp=None)


def _datasets(path):
    with h5py.File(path, "r") as fh:
        return {k: fh[k][:] for k in fh}, {k: v for k, v in fh.attrs.items()}


def _assert_same_file(a, b):
    da, aa = _datasets(a)
    db, ab = _datasets(b)
    assert sorted(da) == sorted(db)
    for k in da:
        np.testing.assert_array_equal(da[k], db[k], err_msg=k)  # bitwise, NaN == NaN
    assert aa.keys() == ab.keys()
    for k in aa:
        assert str(aa[k]) == str(ab[k]), k


def test_rows_do_not_depend_on_chunk_size(sim_meta):
    sim, _ = sim_meta
    a = simulate_arrays(jr.key(7), sim, N_SMALL, chunk=CHUNKS[0])
    b = simulate_arrays(jr.key(7), sim, N_SMALL, chunk=CHUNKS[1])
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # and a window starting mid-set equals the same rows of the full set
    c = simulate_arrays(jr.key(7), sim, 1500, start=3000, chunk=100)
    for k in a:
        np.testing.assert_array_equal(a[k][3000:4500], c[k], err_msg=k)


def test_file_identical_across_chunk_sizes(sim_meta, tmp_path):
    sim, meta = sim_meta
    simulate_to_hdf5(sim, meta, tmp_path / "a.h5", chunk=CHUNKS[0], progress=False)
    simulate_to_hdf5(sim, meta, tmp_path / "b.h5", chunk=CHUNKS[1], progress=False)
    _assert_same_file(tmp_path / "a.h5", tmp_path / "b.h5")


def test_chunk_step_compiles_once(sim_meta):
    from sedflow_jax.simulate import simulate_chunk

    sim, _ = sim_meta
    simulate_arrays(jr.key(1), sim, 2 * 97 + 5, chunk=97)  # padded last step
    before = simulate_chunk._cached._cache_size()
    simulate_arrays(jr.key(2), sim, 3000, start=77, chunk=5000)  # other chunk, start, n: same step shape
    assert simulate_chunk._cached._cache_size() == before


def test_contents_and_flags(sim_meta):
    sim, meta = sim_meta
    rows = simulate_arrays(jr.key(3), sim, N_SMALL, chunk=CHUNKS[0])
    n_band = sim.n_band
    assert rows["theta"].shape == (N_SMALL, 12) and rows["theta_flow"].shape == (N_SMALL, 11)
    assert rows["x"].shape == (N_SMALL, 2 * n_band + 1) and rows["theta"].dtype == np.float32
    ok = rows["flags"] == 0
    assert ok.sum() > N_SMALL // 4
    assert np.all(np.isfinite(rows["x"][ok])) and np.all(rows["sigma_flux_nmgy"][ok] > 0)
    # x = (mags of noisy flux, sigma_mag, z) as in the paper
    f_obs, sig = rows["flux_obs_nmgy"][ok], rows["sigma_flux_nmgy"][ok]
    np.testing.assert_allclose(rows["x"][ok, :n_band], 22.5 - 2.5 * np.log10(f_obs), rtol=1e-5)
    np.testing.assert_allclose(rows["x"][ok, n_band:-1], 2.5 / np.log(10) * sig / f_obs, rtol=1e-4)
    np.testing.assert_array_equal(rows["x"][:, -1], rows["redshift"])
    assert np.all((rows["redshift"] >= 0) & (rows["redshift"] <= 0.2))
    # every invalid row has a reason, every flagged row is really bad
    bad_obs = np.any(rows["flux_obs_nmgy"] <= 0, axis=1)
    np.testing.assert_array_equal((rows["flags"] & FLAG_BITS["flux_nonpositive"]) != 0, bad_obs)
    np.testing.assert_array_equal((rows["flags"] & FLAG_BITS["error_nonpositive"]) != 0,
                                  np.any(rows["sigma_flux_nmgy"] <= 0, axis=1))
    c = describe_flags(rows["flags"])
    assert c["n"] == N_SMALL and c["n_valid"] == int(ok.sum())


def test_cut_counts_stored_and_mag_cut(sim_meta, tmp_path):
    sim, meta = sim_meta
    res = simulate_to_hdf5(sim, meta, tmp_path / "a.h5", chunk=CHUNKS[0], progress=False)
    attrs = check_training_set(tmp_path / "a.h5", verify_data=True)
    flags = load_training_set(tmp_path / "a.h5", valid_only=False, columns=["flags"])["flags"]
    counts = describe_flags(flags)
    assert attrs["n_valid"] == counts["n_valid"] == res["n_valid"]
    for name in FLAG_BITS:
        assert attrs[f"n_flag_{name}"] == counts[name] == res[name]
    assert counts["flux_nonpositive"] > 0  # the faint draws: cut, and counted
    # magnitude cut to the reference catalogue range: flagged, counted, never silent
    from dataclasses import replace

    sim_cut, meta_cut = build_simulator(replace(SimulationConfig(n=N_SMALL, seed=3), mag_cut=True), model=sim.model)
    rows = simulate_arrays(jr.key(3), sim_cut, 300, chunk=CHUNKS[0])
    mag = 22.5 - 2.5 * np.log10(rows["flux_nmgy"])
    rng = np.asarray(sim_cut.mag_range)
    outside = np.any((mag < rng[:, 0]) | (mag > rng[:, 1]), axis=1)
    np.testing.assert_array_equal((rows["flags"] & FLAG_BITS["outside_mag_range"]) != 0, outside)
    assert outside.sum() > 0


def test_partial_and_corrupt_files_detected(sim_meta, tmp_path):
    sim, meta = sim_meta
    with pytest.raises(TrainingSetError, match="not found"):
        check_training_set(tmp_path / "missing.h5")
    out = tmp_path / "a.h5"
    simulate_to_hdf5(sim, meta, out, chunk=CHUNKS[0], progress=False)
    # truncated copy
    data = out.read_bytes()
    (tmp_path / "trunc.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(TrainingSetError, match="truncated or corrupt"):
        load_training_set(tmp_path / "trunc.h5")
    # not HDF5 at all
    (tmp_path / "junk.h5").write_bytes(b"hello" * 100)
    with pytest.raises(TrainingSetError, match="not a readable HDF5"):
        check_training_set(tmp_path / "junk.h5")
    # an HDF5 file that is not a training set
    with h5py.File(tmp_path / "other.h5", "w") as fh:
        fh["a"] = np.zeros(3)
    with pytest.raises(TrainingSetError, match="not a sedflow_jax training set"):
        check_training_set(tmp_path / "other.h5")
    # a partial file renamed to look complete
    part = tmp_path / "p.h5"
    simulate_to_hdf5(sim, meta, part, chunk=CHUNKS[0], progress=False)
    with h5py.File(part, "r+") as fh:
        fh.attrs["complete"] = False
        fh.attrs["n_committed"] = 2048
    with pytest.raises(TrainingSetError, match="partial training set .*2048 of 5000"):
        load_training_set(part)
    # flipped bytes inside a data chunk: fletcher32 catches it
    bad = tmp_path / "bad.h5"
    bad.write_bytes(data)
    with h5py.File(bad, "r") as fh:
        offset = fh["theta"].id.get_chunk_info(0).byte_offset
    raw = bytearray(bad.read_bytes())
    raw[offset + 100 : offset + 108] = b"\xff" * 8
    bad.write_bytes(bytes(raw))
    with pytest.raises(TrainingSetError, match="corrupt"):
        check_training_set(bad, verify_data=True)


def test_existing_output_and_partial_need_flags(sim_meta, tmp_path):
    sim, meta = sim_meta
    out = tmp_path / "a.h5"
    simulate_to_hdf5(sim, meta, out, chunk=CHUNKS[0], progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        simulate_to_hdf5(sim, meta, out, chunk=CHUNKS[0], progress=False)


# The child dies like a kill -9 (os._exit: no cleanup, no close) after its STOP-th chunk: between the data
# write and the commit (BEFORE=1) or right after the commit (BEFORE=0), by wrapping the storage steps.
_CHILD = textwrap.dedent("""
    import os, sys
    from sedflow_jax.simulate import SimulationConfig, build_simulator, simulate_to_hdf5, storage
    stop, before = int(sys.argv[3]), sys.argv[4] == "1"
    calls = {{"write": 0, "commit": 0}}
    write, commit = storage.write_chunk, storage.commit_rows

    def dying_write(fh, r0, rows):
        write(fh, r0, rows)
        calls["write"] += 1
        if before and calls["write"] >= stop:
            os._exit(75)

    def dying_commit(fh, n):
        commit(fh, n)
        calls["commit"] += 1
        if not before and calls["commit"] >= stop:
            os._exit(75)

    storage.write_chunk, storage.commit_rows = dying_write, dying_commit
    sim, meta = build_simulator(SimulationConfig(n={n}, seed=3))
    simulate_to_hdf5(sim, meta, sys.argv[1], chunk=int(sys.argv[2]), progress=False)
""")


@pytest.mark.slow
@pytest.mark.parametrize("before_commit", [False, True])
def test_kill_and_resume_identical(sim_meta, tmp_path, before_commit):
    """A run killed (os._exit, no cleanup) after 2 chunks and resumed with another chunk size
    gives the same file as an uninterrupted run; the killed run never leaves a final file."""
    sim, meta = sim_meta
    ref = tmp_path / "ref.h5"
    simulate_to_hdf5(sim, meta, ref, chunk=CHUNKS[1], progress=False)
    out = tmp_path / "run.h5"
    proc = subprocess.run([sys.executable, "-c", _CHILD.format(n=N_SMALL), str(out), "2048", "2",
                           "1" if before_commit else "0"], capture_output=True, text=True)
    assert proc.returncode == 75, proc.stderr
    assert not out.exists()
    part = out.with_name(out.name + ".partial")
    with h5py.File(part, "r") as fh:
        assert not fh.attrs["complete"]
        assert fh.attrs["n_committed"] == (2048 if before_commit else 4096)
    with pytest.raises(TrainingSetError, match="partial run exists"):
        check_training_set(out)
    with pytest.raises(FileExistsError, match="--resume"):
        simulate_to_hdf5(sim, meta, out, chunk=CHUNKS[0], progress=False)
    simulate_to_hdf5(sim, meta, out, chunk=CHUNKS[0], resume=True, progress=False)
    assert not part.exists()
    _assert_same_file(ref, out)


def test_resume_refuses_other_settings(sim_meta, tmp_path):
    sim, meta = sim_meta
    out = tmp_path / "run.h5"
    from sedflow_jax.io import partial_path
    from sedflow_jax.simulate.storage import _create

    _create(partial_path(out), meta, N_SMALL, sim.n_band).close()
    other = json.loads(json.dumps(meta))
    other["config"]["seed"] = 4
    with pytest.raises(TrainingSetError, match="different settings"):
        simulate_to_hdf5(sim, other, out, chunk=CHUNKS[0], resume=True, progress=False)


def test_metadata_records_provenance(sim_meta, tmp_path):
    sim, meta = sim_meta
    simulate_to_hdf5(sim, meta, tmp_path / "a.h5", chunk=CHUNKS[0], progress=False)
    attrs = check_training_set(tmp_path / "a.h5")
    m = attrs["metadata"]
    assert m["config"]["seed"] == 3 and m["config"]["n"] == N_SMALL
    assert len(m["model"]["ssp_table"]["sha256"]) == 64
    assert m["model"]["basis"] and m["package_version"]
    assert m["noise_model"]["sha256"] and "SDSS" in m["noise_model"]["meta"]["catalogue"]
    assert m["prior"]["class"].endswith("SEDflowPrior") and m["redshift_distribution"]["class"].endswith("Uniform")


def test_custom_prior_and_redshift_distribution(sim_meta):
    import numpyro.distributions as dist

    from sedflow_jax.priors.sedflow import sedflow_prior

    sim, _ = sim_meta
    narrow = sedflow_prior()
    narrow = type(narrow)(narrow.low.at[0].set(11.0), narrow.high.at[0].set(11.5), narrow.redshift_range)
    s2, meta = build_simulator(SimulationConfig(n=10), prior=narrow, redshift_dist=dist.Uniform(0.05, 0.25),
                               model=sim.model)
    rows = simulate_arrays(jr.key(0), s2, 200, chunk=200)
    assert np.all((rows["theta"][:, 0] >= 11.0) & (rows["theta"][:, 0] <= 11.5))
    beyond = rows["redshift"] > sim.model.z_max
    assert beyond.any()
    np.testing.assert_array_equal((rows["flags"] & FLAG_BITS["redshift_outside_range"]) != 0, beyond)


def test_untyped_key_rejected(sim_meta):
    with pytest.raises(TypeError, match="typed"):
        simulate_arrays(jnp.zeros(2, jnp.uint32), sim_meta[0], 10)


@pytest.mark.slow
def test_sharded_over_two_devices_matches(sim_meta, tmp_path):
    """With 2 host devices the chunks are sharded across both and the rows are unchanged."""
    sim, meta = sim_meta
    ref = simulate_arrays(jr.key(5), sim, 200, chunk=64)
    np.savez(tmp_path / "ref.npz", **ref)
    code = textwrap.dedent(f"""
        import jax, jax.random as jr, numpy as np
        assert jax.local_device_count() == 2, jax.devices()
        from sedflow_jax.simulate import SimulationConfig, build_simulator, simulate_chunk
        from sedflow_jax.simulate.core import _row_sharding
        import jax.numpy as jnp
        sim, _ = build_simulator(SimulationConfig(n=200, seed=3))
        sh, step = _row_sharding()
        idx = jax.device_put(np.arange(0, step, dtype=np.uint32), sh)
        out = simulate_chunk(sim, jr.key(5), idx)
        assert len(out['x'].sharding.device_set) == 2, out['x'].sharding
        from sedflow_jax.simulate import simulate_arrays
        rows = simulate_arrays(jr.key(5), sim, 200, chunk=63)
        ref = np.load({str(tmp_path / 'ref.npz')!r})
        for k in ref.files:
            np.testing.assert_array_equal(rows[k], ref[k], err_msg=k)
        print("OK")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_cli_simulate_smoke(tmp_path, bc03_table):
    from sedflow_jax.cli.main import main

    out = tmp_path / "cli.h5"
    assert main(["simulate", "--n", "300", "--out", str(out), "--chunk", "128", "--seed", "1", "--no-progress"]) == 0
    attrs = check_training_set(out)
    assert attrs["n_rows"] == 300
    assert main(["simulate", "--n", "300", "--out", str(out), "--no-progress"]) == 2  # exists: user error, exit 2


def test_flags_use_the_shared_vocabulary_and_format_1_files_still_load(sim_meta, tmp_path):
    """Training sets write sedflow_jax.flags.FLAGS bits (format 2); a format-1 file (old bits) loads with
    the same training rows and its flags translated (old bit 16, redshift, is today's bit 8)."""
    from sedflow_jax.flags import FLAGS
    from sedflow_jax.simulate.storage import FORMAT_VERSION, V1_FLAG_BITS

    assert FORMAT_VERSION == 2
    assert all(FLAG_BITS[name] == FLAGS[name] for name in FLAG_BITS)
    assert "outside_support" not in FLAG_BITS and FLAGS["outside_support"] == 16
    sim, meta = sim_meta
    path = tmp_path / "v1.h5"
    simulate_to_hdf5(sim, meta, path, chunk=CHUNKS[1], progress=False)
    new = load_training_set(path, valid_only=False)
    new_attrs = check_training_set(path)
    # rewrite it as format 1 would have: old bits, old count names (independent forward map)
    to_old = {FLAGS[new_name]: bit for bit, new_name in V1_FLAG_BITS.values()}
    old_flags = np.zeros_like(new["flags"])
    for b_new, b_old in to_old.items():
        old_flags |= np.where(new["flags"] & b_new, b_old, 0).astype(np.uint8)
    with h5py.File(path, "r+") as fh:
        fh.attrs["format_version"] = 1
        fh["flags"][:] = old_flags
        for old, (_, new_name) in V1_FLAG_BITS.items():
            fh.attrs[f"n_flag_{old}"] = fh.attrs.pop(f"n_flag_{new_name}")
    assert not np.array_equal(old_flags, new["flags"])  # the default set has flux_nonpositive rows: bits differ
    again = load_training_set(path, valid_only=False)
    np.testing.assert_array_equal(again["flags"], new["flags"])
    valid_new = load_training_set(path)
    np.testing.assert_array_equal(valid_new["x"], new["x"][new["flags"] == 0])
    attrs = check_training_set(path)
    for name in FLAG_BITS:
        assert attrs[f"n_flag_{name}"] == new_attrs[f"n_flag_{name}"]
