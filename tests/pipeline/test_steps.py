"""The pipeline's steps as functions of arrays (no flow training: a stand-in posterior)."""

from __future__ import annotations

import numpy as np

from sedflow_jax.flags import FLAGS
from sedflow_jax.photometry import SDSS_LAYOUT
from sedflow_jax.pipeline import InferConfig, RowResults, catalogue_from_x, summarise
from sedflow_jax.pipeline.steps import chunk_outputs, store_outputs, support_step


class _Support:
    threshold = 1.0


class _Posterior:
    """Scores every row by its redshift x 10: rows with z > 0.1 are outside the support."""

    support = _Support()

    def support_score(self, x):
        return 10 * SDSS_LAYOUT.redshift(x)


def _x(n=4):
    x = np.zeros((n, 11), np.float32)
    x[:, :5], x[:, 5:10] = 18.0, 0.05
    x[:, 10] = np.linspace(0.05, 0.2, n)
    return x


def test_support_step_scores_valid_rows_only():
    x = _x()
    flags = np.array([0, 0, FLAGS["missing_value"], 0], np.uint8)
    out, score = support_step(_Posterior(), x, flags)
    assert flags.tolist() == [0, 0, 1, 0]  # input untouched
    assert out.tolist() == [0, 0, 1, FLAGS["outside_support"]]
    assert np.isnan(score[2]) and score[3] == np.float32(2.0)


def test_summaries_stored_by_row():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(2, 101, 12))
    med, p16, p84 = summarise(s)
    np.testing.assert_allclose(med, np.median(s, 1), rtol=1e-6)
    assert med.dtype == np.float32 and np.all(p16 < med) and np.all(med < p84)
    x = _x()
    res = RowResults.empty(x, np.zeros(4, np.uint8), np.zeros(4, np.float32), np.ones(4, bool), properties=False)
    store_outputs(res, np.array([1, 3]), chunk_outputs(s, x[[1, 3]], None, None, InferConfig()))
    np.testing.assert_array_equal(res.median[[1, 3]], med)
    assert np.all(np.isnan(res.median[[0, 2]])) and np.all(np.isnan(res.chi2_best))


def test_catalogue_from_x_implies_fluxes():
    x = _x()
    cat = catalogue_from_x(x)
    np.testing.assert_allclose(cat.photometry.flux_nmgy, 10 ** ((22.5 - 18.0) / 2.5), rtol=1e-6)
    np.testing.assert_array_equal(cat.photometry.x(), x)
    assert cat.flags.tolist() == [0, 0, 0, 0]
