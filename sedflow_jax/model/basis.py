"""SFH and metallicity-history NMF bases (host side).

A basis is tabulated on lookback-time nodes and used as a piecewise-linear function of lookback
time, extrapolated linearly outside the nodes (as PROVABGS does with a k=1 spline).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["NMFBasis", "load_default_basis", "load_provabgs_basis", "save_basis"]

PROVABGS_SFH_FILE = "NMF_2basis_SFH_components_nowgt_lin_Nc4.txt"
PROVABGS_ZH_FILE = "NMF_2basis_Z_components_nowgt_lin_Nc2.txt"
PROVABGS_T_FILE = "sfh_t_int.txt"
# PROVABGS stores the SFH rows "jumbled": basis (s1, s2, s3, s4) = raw rows (2, 0, 1, 3).
PROVABGS_SFH_ROW_ORDER = (2, 0, 1, 3)
DEFAULT_BASIS_FILE = "default_basis.npz"


@dataclass(frozen=True, eq=False)
class NMFBasis:
    """Tabulated NMF bases on increasing lookback-time nodes.

    Attributes:
        t_lookback_gyr: ``(n_node,)`` lookback time of the nodes, Gyr, strictly increasing.
        sfh: ``(4, n_node)`` SFH basis shapes (arbitrary normalisation; the model renormalises
            the combination over [0, t_age]).
        zh: ``(2, n_node)`` metallicity-history shapes; Z(t) = gamma . zh(t) in absolute Z.
        attrs: provenance.
    """

    t_lookback_gyr: np.ndarray
    sfh: np.ndarray
    zh: np.ndarray
    attrs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        t = np.asarray(self.t_lookback_gyr)
        name = self.attrs.get("name", "basis")
        if t.ndim != 1 or t.shape[0] < 2 or not np.all(np.diff(t) > 0):
            raise ValueError(f"{name}: t_lookback_gyr must be 1-D and strictly increasing")
        if np.shape(self.sfh) != (4, t.shape[0]):
            raise ValueError(f"{name}: sfh basis must have shape (4, {t.shape[0]}), got {np.shape(self.sfh)}")
        if np.shape(self.zh) != (2, t.shape[0]):
            raise ValueError(f"{name}: zh basis must have shape (2, {t.shape[0]}), got {np.shape(self.zh)}")
        for key in ("sfh", "zh"):
            v = np.asarray(getattr(self, key))
            if not np.all(np.isfinite(v)) or np.any(v < 0):
                raise ValueError(f"{name}: {key} basis must be finite and non-negative")


def load_provabgs_basis(directory: str | Path) -> NMFBasis:
    """Read the original PROVABGS bases from their text files in ``directory``.

    The files store time in decreasing order; columns are reversed so that lookback time
    increases, and the SFH rows are reordered to PROVABGS's (s1, s2, s3, s4).
    """
    directory = Path(directory)
    missing = [f for f in (PROVABGS_SFH_FILE, PROVABGS_ZH_FILE, PROVABGS_T_FILE) if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(f"PROVABGS basis directory {directory} lacks {', '.join(missing)}")
    t = np.loadtxt(directory / PROVABGS_T_FILE)
    sfh = np.loadtxt(directory / PROVABGS_SFH_FILE)
    zh = np.loadtxt(directory / PROVABGS_ZH_FILE)
    if t.ndim != 1 or sfh.shape != (4, t.shape[0]) or zh.shape != (2, t.shape[0]):
        raise ValueError(
            f"PROVABGS basis files in {directory} have unexpected shapes: t {t.shape}, "
            f"sfh {sfh.shape}, zh {zh.shape}"
        )
    return NMFBasis(
        t_lookback_gyr=t[::-1].copy(),
        sfh=sfh[list(PROVABGS_SFH_ROW_ORDER), ::-1].copy(),
        zh=zh[:, ::-1].copy(),
        attrs={"name": "provabgs", "source": str(directory.resolve())},
    )


def load_default_basis() -> NMFBasis:
    """The package's own default basis (see ``scripts/derive_default_basis.py``)."""
    ref = resources.files("sedflow_jax.data").joinpath(DEFAULT_BASIS_FILE)
    with resources.as_file(ref) as path, np.load(path) as f:
        attrs = json.loads(str(f["attrs_json"]))
        attrs.setdefault("name", "default")
        return NMFBasis(
            t_lookback_gyr=f["t_lookback_gyr"], sfh=f["sfh_basis"], zh=f["zh_basis"], attrs=attrs
        )


def save_basis(basis: NMFBasis, path: str | Path) -> None:
    """Write a basis in the package's npz format, atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        t_lookback_gyr=np.asarray(basis.t_lookback_gyr, np.float64),
        sfh_basis=np.asarray(basis.sfh, np.float64),
        zh_basis=np.asarray(basis.zh, np.float64),
        attrs_json=np.array(json.dumps(dict(basis.attrs))),
    )
    tmp.replace(path)
