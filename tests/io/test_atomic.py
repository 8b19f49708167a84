"""Atomic writes leave the permissions a plain write would, and nothing behind on failure."""

from __future__ import annotations

import os
import stat

import pytest

from sedflow_jax.io.atomic import atomic_path, atomic_write_text


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_new_file_gets_the_mode_of_a_plain_write(tmp_path):
    plain = tmp_path / "plain.txt"
    with open(plain, "w") as fh:  # the reference: what the OS gives a new file under this umask
        fh.write("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    assert _mode(tmp_path / "atomic.txt") == _mode(plain)


def test_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o640


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["out.txt"]
