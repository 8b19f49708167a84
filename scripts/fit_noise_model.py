"""Derive the shipped noise-model table ``sedflow_jax/data/noise_model_sdss.json``.

Fits p(sigma_m | m) per SDSS band (Gaussian at fixed magnitude; median and robust scatter in 40
equal-count magnitude bins, smoothed, see :mod:`sedflow_jax.simulate.noise`) on the *training* half
of the 10,000 SDSS Main Galaxy Sample galaxies in ``../shared/data/sdss_mgs/SDSS_MGS.train``
(MLZ, NCSA licence), and validates it on the held-out half ``SDSS_MGS.test``. Only the fitted
numbers are written (about 6 kB), never the data.

    .venv/bin/python scripts/fit_noise_model.py [--shared ../shared] [--out sedflow_jax/data/noise_model_sdss.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sedflow_jax.simulate.noise import fit_noise_model, read_mag_catalogue, validate_noise_model

ROOT = Path(__file__).resolve().parents[1]
N_BINS = 40
SCATTER = "mad"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--out", default=str(ROOT / "sedflow_jax" / "data" / "noise_model_sdss.json"))
    args = p.parse_args(argv)
    src = Path(args.shared) / "data" / "sdss_mgs"
    mag, sig, _ = read_mag_catalogue(src / "SDSS_MGS.train")
    noise = fit_noise_model(
        mag, sig, ("sdss2010-u", "sdss2010-g", "sdss2010-r", "sdss2010-i", "sdss2010-z"), n_bins=N_BINS, scatter=SCATTER,
        meta={
            "catalogue": "SDSS Main Galaxy Sample, MLZ SDSS_MGS.train (mgckind/MLZ@c3d6d003, 5,000 galaxies, NCSA licence)",
            "derived_by": "scripts/fit_noise_model.py",
            "validated_on": "SDSS_MGS.test (held-out 5,000 galaxies)",
        },
    )
    mag_t, sig_t, _ = read_mag_catalogue(src / "SDSS_MGS.test")
    val = validate_noise_model(noise, mag_t, sig_t)
    d = noise.to_dict()
    d["meta"]["validation_test_half"] = {b: {k: round(v, 4) for k, v in s.items()} for b, s in val.items()}
    from sedflow_jax.io import atomic_write_text

    atomic_write_text(args.out, json.dumps(d, indent=1) + "\n")
    print(f"wrote {args.out}")
    print(f"{'band':12s} {'n':>5s} {'PIT KS D':>9s} {'bin KS med':>10s} {'bin KS max':>10s} {'med rel err':>11s}")
    for b, s in val.items():
        print(f"{b:12s} {s['n']:5d} {s['pit_ks']:9.3f} {s['bin_ks_median']:10.3f} {s['bin_ks_max']:10.3f} {s['median_rel_err_max']:11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
