"""Per-galaxy comparison of two posterior sample sets (e.g. ANPE against a NUTS reference).

Two metrics, each for one galaxy's ``(n_draw, n_param)`` draws:

- :func:`wasserstein_over_sigma`: per-parameter 1-D Wasserstein-1 distance between the
  marginals, in units of the reference (``samples_b``) standard deviation. A pure shift of ``s``
  reference sigmas gives ``s``.
- :func:`c2st`: classifier two-sample test, the cross-validated accuracy of a classifier telling
  the two sets apart: 0.5 for identical distributions, 1.0 for separable ones (sbibm/sbi
  convention; needs scikit-learn).

:func:`compare_posteriors` loops both over galaxies of ``(n_draw, n_gal, n_param)`` arrays.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from scipy import stats

from ..errors import InputError
from ._checks import as_draws, as_samples, check_positive_int

__all__ = ["CLASSIFIERS", "CompareResult", "c2st", "compare_posteriors", "wasserstein_over_sigma"]

#: Classifiers accepted by :func:`c2st`.
CLASSIFIERS = ("mlp", "gbt", "rf")


def wasserstein_over_sigma(samples_a, samples_b) -> np.ndarray:
    """Per-parameter 1-D Wasserstein distance between two galaxies' marginals over ``std(b)``.

    Args:
        samples_a: ``(n_draw_a, n_param)`` draws of the posterior under test.
        samples_b: ``(n_draw_b, n_param)`` reference draws.

    Returns:
        ``(n_param,)`` ``W1(a_k, b_k) / std(b_k)``.
    """
    a = as_draws(samples_a, "samples_a")
    b = as_draws(samples_b, "samples_b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"samples_a and samples_b must have the same n_param; got {a.shape[1]} and {b.shape[1]}.")
    sigma = b.std(axis=0, ddof=1)
    if np.any(sigma <= 0):
        raise InputError(f"samples_b has zero spread in parameters {np.flatnonzero(sigma <= 0).tolist()}; "
                         "W/sigma is undefined.")
    w = np.array([stats.wasserstein_distance(a[:, k], b[:, k]) for k in range(a.shape[1])])
    return w / sigma


def c2st(samples_a, samples_b, *, seed: int = 1, n_folds: int = 5, classifier: str = "mlp",
         z_score: bool = True, max_samples: int | None = None, n_threads: int | None = 1) -> float:
    """Classifier two-sample test accuracy between two sample sets of one galaxy.

    The larger set is subsampled (without replacement, seeded) to the size of the smaller, so the
    classes are balanced and chance level is exactly 0.5. Both sets are z-scored with the mean and
    standard deviation of ``samples_b`` (the reference). The classifier is scikit-learn's MLP
    (sbibm's choice: two hidden layers of ``10 n_param`` ReLU units, adam, ``max_iter=1000``),
    gradient boosting (``"gbt"``, ``HistGradientBoostingClassifier``) or a random forest
    (``"rf"``, sbi's default), scored by stratified ``n_folds``-fold cross-validation.

    Args:
        samples_a: ``(n_draw_a, n_param)`` draws of the posterior under test.
        samples_b: ``(n_draw_b, n_param)`` reference draws.
        seed: seed of the subsampling, the folds and the classifier.
        n_folds: cross-validation folds (>= 2).
        classifier: one of :data:`CLASSIFIERS`.
        z_score: standardise the features with the reference statistics.
        max_samples: optional cap on draws per set (speed); ``None`` keeps the smaller set's size.
        n_threads: BLAS/OpenMP threads while fitting (``threadpoolctl``); 1 by default because one
            galaxy's problem is small and oversubscribed OpenMP pools (gradient boosting) can be
            ~50x slower on a loaded machine; parallelise over galaxies instead. ``None``: no limit.

    The MLP's ``ConvergenceWarning`` (it often stops at ``max_iter`` on small sets, as in sbibm) is
    silenced; the accuracy is still the cross-validated one.

    Returns:
        Mean cross-validated accuracy in [0, 1]; 0.5 means indistinguishable.
    """
    a = as_draws(samples_a, "samples_a")
    b = as_draws(samples_b, "samples_b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"samples_a and samples_b must have the same n_param; got {a.shape[1]} and {b.shape[1]}.")
    if classifier not in CLASSIFIERS:
        raise InputError(f"classifier must be one of {CLASSIFIERS}; got {classifier!r}.")
    n_folds = check_positive_int(n_folds, "n_folds", minimum=2)
    n = min(a.shape[0], b.shape[0])
    if max_samples is not None:
        n = min(n, check_positive_int(max_samples, "max_samples", minimum=n_folds))
    if n < n_folds:
        raise InputError(f"c2st needs at least n_folds={n_folds} draws per set; got {n}.")
    try:
        from sklearn.model_selection import StratifiedKFold, cross_val_score
    except ImportError as err:  # scikit-learn is an optional dependency
        raise RuntimeError("c2st needs scikit-learn: pip install 'scikit-learn>=1.4'") from err
    rng = np.random.default_rng(seed)
    a = a[rng.choice(a.shape[0], n, replace=False)]
    b = b[rng.choice(b.shape[0], n, replace=False)]
    if z_score:
        mean, std = b.mean(axis=0), b.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        a, b = (a - mean) / std, (b - mean) / std
    x = np.concatenate([a, b])
    y = np.concatenate([np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)])
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n_threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(_classifier(classifier, a.shape[1], seed), x, y, cv=folds, scoring="accuracy")
    return float(np.mean(scores))


@dataclasses.dataclass(frozen=True)
class CompareResult:
    """Per-galaxy comparison of two sample sets.

    Attributes:
        w_over_sigma: ``(n_gal, n_param)`` Wasserstein distance over the reference std.
        c2st: ``(n_gal,)`` C2ST accuracy, or ``None`` when it was not computed.
    """

    w_over_sigma: np.ndarray
    c2st: np.ndarray | None


def compare_posteriors(samples_a, samples_b, *, sample_axis: int = 0, with_c2st: bool = True,
                       **c2st_kwargs) -> CompareResult:
    """Apply :func:`wasserstein_over_sigma` and :func:`c2st` to every galaxy.

    Args:
        samples_a: ``(n_draw_a, n_gal, n_param)`` draws under test, along ``sample_axis``.
        samples_b: ``(n_draw_b, n_gal, n_param)`` reference draws, along ``sample_axis``.
        sample_axis: axis of both arrays that indexes draws.
        with_c2st: also run the (slower) classifier test.
        **c2st_kwargs: passed to :func:`c2st`.
    """
    a = as_samples(samples_a, "samples_a", sample_axis=sample_axis)
    b = as_samples(samples_b, "samples_b", sample_axis=sample_axis)
    if a.shape[1:] != b.shape[1:]:
        raise InputError(f"samples_a and samples_b must share (n_gal, n_param); got {a.shape[1:]} and {b.shape[1:]}.")
    n_gal = a.shape[1]
    w = np.stack([wasserstein_over_sigma(a[:, i], b[:, i]) for i in range(n_gal)])
    acc = np.array([c2st(a[:, i], b[:, i], **c2st_kwargs) for i in range(n_gal)]) if with_c2st else None
    return CompareResult(w_over_sigma=w, c2st=acc)


def _classifier(name: str, n_param: int, seed: int):
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier

        width = 10 * n_param
        return MLPClassifier(hidden_layer_sizes=(width, width), activation="relu", solver="adam",
                             max_iter=1000, random_state=seed)
    if name == "gbt":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(random_state=seed)
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
