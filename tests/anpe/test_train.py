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
