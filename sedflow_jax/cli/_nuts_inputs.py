"""The catalogue of ``sedflow-jax nuts``: reading (CSV or simulated HDF5), the id checks, the row screen.

The CSV is read by :func:`sedflow_jax.io.tables.open_table`, as ``infer`` reads catalogues. Errors in the
file itself (a missing or duplicated column, a line with too many or too few fields, a non-numeric value, a
duplicated or unusable id, a bad ``--rows``) are :class:`InputError`\\ s naming the file, column, line, row
or argument, raised before any fit. Rows whose values cannot be fitted (an empty or non-finite flux in a
band with ivar > 0, a negative, empty or non-finite ivar, no band with ivar > 0, a redshift that is not
finite or outside [0, z_max]) are not errors: :func:`screen_rows` gives their
reasons, and the command reports them per galaxy and fits the others.

Ids key the output files (``galaxy_<id>.nc``), so they must be unique and usable as a file name; they
are carried exactly as read (strings, never through a float). Unusable ids are rejected, not sanitised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["Inputs", "parse_rows", "read_inputs", "check_ids", "screen_rows"]

#: Longest id (UTF-8 bytes): ``galaxy_<id>.nc`` and its temporary twin must fit a 255-byte file name.
MAX_ID_BYTES = 200


@dataclass
class Inputs:
    """The selected rows of a catalogue: ``flux``/``ivar`` ``(n, n_band)``, ``z`` ``(n,)``, ``ids``
    (strings as read), ``where`` (``'row R, line L'`` per row, for messages), ``truth`` (simulated sets)
    and ``labels`` (``(flux column, ivar column)`` names per band, for the screen's reasons)."""

    flux: np.ndarray
    ivar: np.ndarray
    z: np.ndarray
    ids: list
    where: list
    truth: np.ndarray | None
    labels: list


def parse_rows(text: str | None) -> slice | None:
    """``--rows START:STOP`` (either side may be empty) as a slice (:func:`sedflow_jax.cli.infer.parse_rows`)."""
    from .infer import parse_rows as parse_range

    rows = parse_range(text)
    return None if rows is None else slice(*rows)


def read_inputs(path: str, filters, rows: slice | None) -> Inputs:
    """Read the catalogue and select ``rows`` (all ids are checked first, over the whole file)."""
    from ..model.filters import resolve_filter_names

    names = list(resolve_filter_names(filters))
    if path.endswith((".h5", ".hdf5")):
        return _read_simulated(path, names, rows)
    need = ["redshift"] + [f"flux_{b}" for b in names] + [f"ivar_{b}" for b in names]
    values, ids, where = _read_csv(path, need, names)
    idx = _select(path, values.shape[0], rows)
    ids = [str(i) if ids is None else ids[i] for i in idx]  # no id column: the row number in the file
    nb = len(names)
    return Inputs(flux=values[idx, 1:1 + nb], ivar=values[idx, 1 + nb:], z=values[idx, 0], ids=ids,
                  where=[where[i] for i in idx], truth=None,
                  labels=[(f"flux_{b}", f"ivar_{b}") for b in names])


def _select(path, n: int, rows: slice | None) -> np.ndarray:
    idx = np.arange(n)[rows or slice(None)]
    if idx.size == 0:
        raise InputError(f"{path}: no rows to fit" + (f" (--rows {rows.start}:{rows.stop} of {n} rows)" if rows else ""))
    return idx


def _read_simulated(path, names, rows) -> Inputs:
    from ..simulate import load_training_set

    data = load_training_set(path, valid_only=False, columns=("flux_obs_nmgy", "sigma_flux_nmgy", "redshift", "theta"))
    idx = _select(path, data["redshift"].shape[0], rows)
    sig = np.asarray(data["sigma_flux_nmgy"][idx], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # sigma 0 marks an unused band (ivar 0); a negative or non-finite sigma stays bad for the screen
        ivar = np.where(sig > 0, 1.0 / sig**2, np.where(sig == 0, 0.0, np.where(sig < 0, -1.0, np.nan)))
    return Inputs(flux=np.asarray(data["flux_obs_nmgy"][idx], np.float64), ivar=ivar,
                  z=np.asarray(data["redshift"][idx], np.float64), ids=[str(i) for i in idx],
                  where=[f"row {i}" for i in idx], truth=data["theta"][idx],
                  labels=[(f"flux_obs_nmgy[{b}]", f"sigma_flux_nmgy[{b}]") for b in names])


def _read_csv(path: str, need: list, names: list):
    """``(values (n_row, len(need)) float64, ids as read or None, 'row R' per row)`` through
    :func:`~sedflow_jax.io.tables.open_table` (field counts, text in numeric columns and empty files are errors
    naming the line; an empty value is NaN, which :func:`screen_rows` reports for its row)."""
    from ..io.tables import open_table

    with open_table(path) as t:
        missing = [c for c in need if c not in t]
        if missing:
            raise InputError(f"{path}: missing columns {missing} (need redshift, flux_<band>, ivar_<band> for {names})")
        t.check_numeric(need)
        id_col = "id" if "id" in t else None
        table = t.read(need + ([id_col] if id_col else []), text=[id_col] if id_col else [])
    values = np.stack([np.asarray(table[c], np.float64) for c in need], 1)
    where = [f"row {r}" for r in range(values.shape[0])]
    ids = None if id_col is None else [str(v) for v in table[id_col]]
    if ids is not None:
        check_ids(path, ids, where)
    return values, ids, where


def check_ids(path: str, ids: list, where: list) -> None:
    """InputError for an empty id, one that is not a plain file name, or a repeated one (the outputs are keyed by id)."""
    for g, w in zip(ids, where):
        if not g:
            raise InputError(f"{path}: {w}: empty id (ids name the output files galaxy_<id>.nc)")
        if any(ch in g for ch in "/\\\0") or any(ord(ch) < 32 for ch in g) or g in (".", ".."):
            raise InputError(f"{path}: {w}: id {g!r} cannot be a file name (no '/', '\\', control characters; "
                             "ids name the output files galaxy_<id>.nc)")
        if len(g.encode()) > MAX_ID_BYTES:
            raise InputError(f"{path}: {w}: id longer than {MAX_ID_BYTES} bytes (it names the file galaxy_<id>.nc)")
    seen: dict = {}
    for k, g in enumerate(ids):
        seen.setdefault(g, []).append(k)
    dups = {g: ks for g, ks in seen.items() if len(ks) > 1}
    if dups:
        shown = "; ".join(f"{g!r} at {', '.join(where[k] for k in ks[:3])}{' ...' if len(ks) > 3 else ''}"
                          for g, ks in list(dups.items())[:3])
        more = f" (and {len(dups) - 3} more)" if len(dups) > 3 else ""
        raise InputError(f"{path}: {len(dups)} repeated id(s), but ids must be unique (each names its output "
                         f"file galaxy_<id>.nc): {shown}{more}")


def screen_rows(inputs: Inputs, z_max: float) -> list:
    """Per row, ``''`` when it can be fitted, else the reasons it cannot (``'; '``-joined)."""
    out = []
    for f, w, z in zip(inputs.flux, inputs.ivar, inputs.z):
        bad = []
        for fb, wb, (fl, wl) in zip(f, w, inputs.labels):
            if not np.isfinite(wb):
                bad.append(f"{wl} not finite")
            elif wb < 0:
                bad.append(f"{wl} < 0")
            elif wb > 0 and not np.isfinite(fb):
                bad.append(f"{fl} not finite (its ivar > 0; set ivar 0 to drop the band)")
        if not bad and not np.any(w > 0):
            bad.append("no band has ivar > 0")
        if not np.isfinite(z):
            bad.append("redshift not finite")
        elif not 0.0 <= z <= z_max:
            bad.append(f"redshift {z:g} outside [0, {z_max:g}]")
        out.append("; ".join(bad))
    return out
