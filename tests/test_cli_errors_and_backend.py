"""The CLI's error path (user errors: one line, exit 2; anything else: traceback) and the library leaving
matplotlib's backend alone."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sedflow_jax.cli import main as cli_main
from sedflow_jax.errors import InputError


@pytest.fixture
def fake_command(monkeypatch):
    """Make ``sedflow-jax ssp info`` raise a given exception (the parser is built after the patch)."""
    import sedflow_jax.cli.ssp as ssp

    def install(exc):
        def boom(args):
            raise exc

        monkeypatch.setattr(ssp, "_cmd_info", boom)

    return install


@pytest.mark.parametrize("exc", [InputError("bad --thing 3: must be > 4"), FileNotFoundError("x.h5: not found"),
                                 FileExistsError("y exists"), IsADirectoryError("z is a directory"),
                                 PermissionError("w: permission denied")])
def test_user_errors_are_one_line_exit_2(fake_command, capsys, exc):
    fake_command(exc)
    assert cli_main.main(["ssp", "info", "whatever"]) == 2
    err = capsys.readouterr().err
    assert err == f"sedflow-jax ssp: error: {exc}\n"


def test_debug_shows_the_traceback_of_user_errors(fake_command):
    fake_command(InputError("bad value"))
    with pytest.raises(InputError, match="bad value"):
        cli_main.main(["--debug", "ssp", "info", "whatever"])


@pytest.mark.parametrize("exc", [ValueError("a bug"), RuntimeError("XLA: resource exhausted"), KeyError("k")])
def test_other_errors_keep_their_traceback(fake_command, exc):
    fake_command(exc)
    with pytest.raises(type(exc)):
        cli_main.main(["ssp", "info", "whatever"])


def test_cli_process_exit_codes(tmp_path):
    """Exit 2 and one line for a user error in a real process (no traceback)."""
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"nope")
    proc = subprocess.run([sys.executable, "-m", "sedflow_jax.cli.main", "ssp", "info", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("sedflow-jax ssp: error: ")


def test_library_plotting_leaves_the_backend_alone(tmp_path):
    """Importing and plotting from the library (training curve, validation figures, spectrum) keeps the
    backend a user chose (a notebook's inline backend here stands as the 'template' backend)."""
    code = f"""
import matplotlib
matplotlib.use("template")
import numpy as np
from sedflow_jax.anpe.build import plot_training_curve
from sedflow_jax.validation.plots import plot_pp, plot_sbc_histograms
from sedflow_jax.plotting import new_figure, save_figure
before = matplotlib.get_backend()
plot_training_curve({{"train_loss": [2.0, 1.0], "val_loss": [2.1, 1.2], "best_epoch": 2}}, r"{tmp_path}/c.png")
ranks = np.random.default_rng(0).uniform(size=(50, 3))
plot_sbc_histograms(ranks, r"{tmp_path}/s.png", n_draw=100)
plot_pp(ranks, r"{tmp_path}/p.png")
fig, ax = new_figure(figsize=(2, 2)); ax.plot([0, 1]); save_figure(fig, r"{tmp_path}/f.png")
assert matplotlib.get_backend() == before == "template", matplotlib.get_backend()
import sys
assert "matplotlib.pyplot" not in sys.modules
print("OK")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]
    for name in ("c", "s", "p", "f"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0
