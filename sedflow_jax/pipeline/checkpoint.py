"""Checkpoints of a catalogue-inference run: one finished part file per chunk of rows, in ``<out>.partial/``.

A run writes each chunk's posterior file atomically into the directory (``rows_<start>_<stop>.h5``) beside a
``manifest.json`` that fingerprints the run (input file, rows, settings, model). A killed run leaves the
directory; ``resume`` continues with the chunks not yet there (a run of other settings or input is refused,
naming what differs); without ``resume`` the directory is removed and the run starts over. When every chunk
is there the parts are merged into ``out`` (:func:`~sedflow_jax.pipeline.merge.merge_posterior_files`) and the
directory is removed. Half-written temporary files of an earlier killed run are removed on the next run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import InputError
from ..io.atomic import atomic_write_json, partial_path

__all__ = ["Checkpoint", "check_output_path", "remove_stale_temps"]

_MANIFEST = "manifest.json"


def check_output_path(out: str | os.PathLike, *, inputs=()) -> Path:
    """``out`` as a Path, or an :class:`InputError` before any work when it cannot be the run's output file:
    it is a directory, one of ``inputs`` (the catalogue: it would be replaced), below a file, or not writable."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"--out {out} is a directory; give a file name, e.g. {out / 'posteriors.h5'}")
    for path in inputs:
        if path is not None and out.exists() and Path(path).exists() and os.path.samefile(out, path):
            raise InputError(f"--out {out} is the input catalogue {path}; it would be overwritten: choose another name")
        if path is not None and not out.exists() and out.resolve() == Path(path).resolve():
            raise InputError(f"--out {out} is the input catalogue {path}")
    parent = out.resolve().parent
    ancestor = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if ancestor is not None and not ancestor.is_dir():
        raise InputError(f"--out {out}: {ancestor} is a file, not a directory")
    if ancestor is not None and not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: directory {ancestor} is not writable")
    if out.exists() and not os.access(out, os.W_OK) and not os.access(parent, os.W_OK):
        raise InputError(f"--out {out} exists and cannot be replaced (no write permission)")
    return out


def remove_stale_temps(out: Path) -> list[Path]:
    """Remove the temporary files :func:`~sedflow_jax.io.atomic.atomic_path` leaves beside ``out`` when a process
    writing it is killed (``.<name>.*.tmp``); returns what was removed."""
    import re

    removed = []
    pattern = re.compile(rf"\.{re.escape(out.name)}\.[A-Za-z0-9_]{{8}}\.tmp")  # tempfile.mkstemp's 8 characters
    if out.parent.is_dir():
        for tmp in out.parent.glob(f".{out.name}.*.tmp"):
            if pattern.fullmatch(tmp.name):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


class Checkpoint:
    """The part files of one run writing ``out`` (see the module docstring)."""

    def __init__(self, out: str | os.PathLike, fingerprint: dict, *, resume: bool):
        self.out = Path(out)
        self.dir = partial_path(self.out)
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))
        self.resumed = False
        remove_stale_temps(self.out)
        if self.dir.exists() and not self.dir.is_dir():
            self.dir.unlink()
        if self.dir.is_dir():
            if resume:
                self._check_manifest()
                self.resumed = True
                for tmp in self.dir.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
            else:
                shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.dir / _MANIFEST, self.fingerprint)

    def _check_manifest(self) -> None:
        try:
            old = json.loads((self.dir / _MANIFEST).read_text())
        except (OSError, ValueError):
            raise InputError(f"cannot resume: {self.dir} has no readable {_MANIFEST}; rerun without --resume") from None
        differ = sorted(k for k in set(old) | set(self.fingerprint) if old.get(k) != self.fingerprint.get(k))
        if differ:
            raise InputError(f"cannot resume into {self.out}: the checkpoint in {self.dir} is of a run with other "
                             f"{', '.join(differ)}; rerun with the same arguments, or without --resume")

    def part(self, start: int, stop: int) -> Path:
        """The part file of rows ``[start, stop)``."""
        return self.dir / f"rows_{start:012d}_{stop:012d}.h5"

    def done(self, start: int, stop: int) -> bool:
        return self.part(start, stop).exists()

    def parts(self) -> list[Path]:
        return sorted(self.dir.glob("rows_*_*.h5"))

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
