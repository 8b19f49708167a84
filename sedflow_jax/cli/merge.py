"""``sedflow-jax merge PART... --out FILE``: join the posterior files of a catalogue split with ``infer --rows``."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("merge", help="join posterior files of consecutive row ranges (infer --rows)",
                              description="Merge the posterior files written by `sedflow-jax infer CATALOG --rows "
                                          "START:STOP` for consecutive row ranges (any order) into one file, equal to "
                                          "the file of one run over all the rows. The parts must cover one range "
                                          "without gaps or overlaps and come from runs with the same arguments.")
    p.add_argument("parts", nargs="+", help="posterior files (HDF5) of the parts")
    p.add_argument("--out", required=True, help="merged posterior file")
    p.set_defaults(func=_merge)


def _merge(args: argparse.Namespace) -> int:
    import json

    import h5py

    from ..pipeline import merge_posterior_files
    from ..pipeline.checkpoint import check_output_path, remove_stale_temps

    remove_stale_temps(check_output_path(args.out, inputs=args.parts))  # what a killed merge left
    out = merge_posterior_files(args.parts, args.out)
    with h5py.File(out, "r") as fh:
        counts = json.loads(fh.attrs["counts"])
        rows = int(fh.attrs["row_start"]), int(fh.attrs["row_stop"])
    print(f"wrote {out}: rows {rows[0]}..{rows[1] - 1} from {len(args.parts)} files; {counts['n_inferred']} inferred, "
          f"{counts['n_invalid']} flagged invalid")
    return 0
