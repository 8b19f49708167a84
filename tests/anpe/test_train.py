import equinox as eqx
import jax
import numpy as np
import pytest

from sedflow_jax.anpe import train

from .conftest import TINY_FLOW, TINY_TRAIN, synthetic_pairs


def _leaves(flow):
    return [np.asarray(v) for v in jax.tree_util.tree_leaves(eqx.filter(flow.flow, eqx.is_inexact_array))]


def test_resume_reproduces_uninterrupted_run_bitwise(tmp_path):
    data = synthetic_pairs(2000, seed=1)
    quiet = dict(progress=False, log=lambda *a: None, flow_config=TINY_FLOW, train_config=TINY_TRAIN)
    full, h_full = train(data, tmp_path / "full", **quiet)
    _, h_part = train(data, tmp_path / "split", stop_after_epochs=1, **quiet)
    assert len(h_part["val_loss"]) == 1
    resumed, h_res = train(data, tmp_path / "split", resume=True, **quiet)
    assert h_res["val_loss"] == h_full["val_loss"]
    for a, b in zip(_leaves(full), _leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(h_full["best_val_loss"]) and h_full["val_loss"][-1] < h_full["val_loss"][0] + 1.0


def test_refuses_to_overwrite_checkpoint_and_mismatched_resume(tmp_path):
    data = synthetic_pairs(1000, seed=2)
    quiet = dict(progress=False, log=lambda *a: None, flow_config=TINY_FLOW)
    train(data, tmp_path, train_config=TINY_TRAIN, stop_after_epochs=1, **quiet)
    with pytest.raises(FileExistsError):
        train(data, tmp_path, train_config=TINY_TRAIN, **quiet)
    from dataclasses import replace

    with pytest.raises(ValueError, match="different settings"):
        train(data, tmp_path, train_config=replace(TINY_TRAIN, batch_size=128), resume=True, **quiet)


def test_nan_rows_are_dropped_and_nan_guard_counts(tmp_path):
    u, x = synthetic_pairs(1500, seed=3)
    x[:10, 0] = np.nan
    _, hist = train((u, x), tmp_path, flow_config=TINY_FLOW, train_config=TINY_TRAIN, progress=False, log=lambda *a: None)
    assert hist["n_skipped_steps"] == 0 and all(np.isfinite(hist["val_loss"]))


def test_divergent_training_raises_instead_of_returning_an_untrained_flow(tmp_path):
    from dataclasses import replace

    data = synthetic_pairs(1000, seed=4)
    with pytest.raises(RuntimeError, match="diverged"):
        train(data, tmp_path, flow_config=TINY_FLOW, train_config=replace(TINY_TRAIN, learning_rate=1e30),
              progress=False, log=lambda *a: None)


def test_fine_tuning_starts_from_init_flow_and_keeps_its_standardisation(tmp_path, tiny_posterior):
    """Warm start: epoch 0 is the init flow's own validation NLL (computed here from its log_prob), the
    x standardisation and box stay the init flow's, a zero learning rate returns the init flow unchanged,
    a real one lowers the loss on the shifted data, and a different architecture is refused."""
    from dataclasses import replace

    import jax.numpy as jnp

    from sedflow_jax.anpe.data import split_indices
    from sedflow_jax.anpe.flow import box_to_unbounded

    _, post, _ = tiny_posterior
    init = post.flow
    u, x = synthetic_pairs(1500, seed=7)
    x[:, :5] += 0.7  # shifted photometry: the new set's own statistics differ from the init flow's
    quiet = dict(progress=False, log=lambda *a: None, flow_config=TINY_FLOW, init_flow=init)

    frozen, h0 = train((u, x), tmp_path / "lr0", train_config=replace(TINY_TRAIN, learning_rate=0.0,
                                                                       schedule="constant", max_epochs=2), **quiet)
    _, va = split_indices(u.shape[0], TINY_TRAIN.val_fraction, TINY_TRAIN.seed)
    y_va = box_to_unbounded(jnp.asarray(u[va]), init.low, init.high)[0]
    expected = -float(np.mean(np.asarray(init.log_prob_unbounded(y_va, jnp.asarray(x[va])))))
    np.testing.assert_allclose(h0["initial_val_loss"], expected, rtol=1e-5)
    assert h0["best_epoch"] == 0
    for a, b in zip(_leaves(init), _leaves(frozen), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(frozen.x_mean), np.asarray(init.x_mean))

    tuned, h1 = train((u, x), tmp_path / "tuned", train_config=replace(TINY_TRAIN, learning_rate=3e-3), **quiet)
    assert h1["best_val_loss"] < h1["initial_val_loss"] - 0.05 and h1["best_epoch"] > 0
    np.testing.assert_array_equal(np.asarray(tuned.x_std), np.asarray(init.x_std))

    with pytest.raises(ValueError, match="architecture"):
        train((u, x), tmp_path / "other", train_config=TINY_TRAIN, progress=False, log=lambda *a: None,
              flow_config=replace(TINY_FLOW, nn_width=8), init_flow=init)


def test_cli_train_init_from_fine_tunes_a_saved_model(tiny_posterior, bc03_table, tmp_path, capsys):
    """`sedflow-jax train --init-from MODEL`: the saved model's architecture and x standardisation are used
    (the architecture flags are ignored) and model.json records where it started and its starting loss."""
    import json

    from sedflow_jax.anpe import Posterior
    from sedflow_jax.cli.main import main
    from sedflow_jax.simulate import SimulationConfig, build_simulator, simulate_to_hdf5

    model_dir, post, _ = tiny_posterior
    sim, meta = build_simulator(SimulationConfig(n=3000, seed=5))
    data = tmp_path / "train.h5"
    simulate_to_hdf5(sim, meta, data, chunk=1024, progress=False)
    out = tmp_path / "tuned"
    assert main(["train", str(data), "--out", str(out), "--init-from", str(model_dir), "--layers", "7",
                 "--max-epochs", "1", "--batch-size", "256", "--no-progress"]) == 0
    assert "best validation loss" in capsys.readouterr().out
    tuned = Posterior.load(out)
    assert tuned.flow.config == post.flow.config
    np.testing.assert_array_equal(np.asarray(tuned.flow.x_mean), np.asarray(post.flow.x_mean))
    saved = json.loads((out / "model.json").read_text())
    assert saved["init_from"]["path"] == str(model_dir) and np.isfinite(saved["init_from"]["initial_val_loss"])
    with pytest.raises(FileNotFoundError, match="shipped models: default, sdss"):
        Posterior.load(tmp_path / "no_such_model")
