"""Corrected resampled t-test for comparing two strategies over cross-validation folds.

The folds' training sets overlap, so per-fold scores are correlated and the plain
paired t-test is far too optimistic. Nadeau & Bengio (2003, "Inference for the
generalization error", Machine Learning 52, Eq. 13 / the "corrected resampled
t-test") inflate the variance of the mean difference by the test/train size ratio:

    t = mean(d) / sqrt((1/k + n_test/n_train) * var(d, ddof=1)),   df = k - 1,

with ``d_j`` the score difference of fold j and k the number of folds. No maintained
dependency ships it (``mlxtend`` has only the uncorrected resampled test, and
scikit-learn writes it by hand in its example "Statistical comparison of models
using grid search"), so it is implemented here, checked against a worked example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["TTestResult", "corrected_resampled_ttest"]


@dataclass(frozen=True)
class TTestResult:
    """Result of :func:`corrected_resampled_ttest`.

    Attributes:
        t: the t statistic (``inf``/``-inf`` when all differences are equal and non-zero, 0 when all are 0).
        p: two-sided p-value.
        df: degrees of freedom (k - 1).
        mean_difference: mean of the per-fold differences.
        corrected_sd: ``sqrt((1/k + n_test/n_train) * var(d, ddof=1))``.
    """

    t: float
    p: float
    df: int
    mean_difference: float
    corrected_sd: float


def corrected_resampled_ttest(
    differences: Sequence[float] | np.ndarray, n_train: float, n_test: float
) -> TTestResult:
    """Nadeau & Bengio's corrected resampled t-test on per-fold score differences.

    Args:
        differences: (k,) per-fold differences, e.g. ``acc(strategy) - acc(standard)`` on each fold's test set.
        n_train: training set size per fold (a mean over folds is fine); subjects or scans, as long as
            ``n_test`` uses the same unit.
        n_test: test set size per fold.

    Returns:
        :class:`TTestResult`. Zero variance (all differences equal) is defined as: ``t = 0, p = 1``
        when the differences are all 0 (no evidence of a difference), else ``t = ±inf, p = 0``
        (a perfectly consistent difference), rather than the NaN that 0/0 would give.

    Raises:
        ValueError: fewer than 2 differences, non-finite values, or non-positive sizes.
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f"differences must be a 1D sequence of at least 2 per-fold values, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError(f"differences must be finite, got {d.tolist()}")
    if not (n_train > 0 and n_test > 0):
        raise ValueError(f"n_train and n_test must be > 0, got n_train={n_train}, n_test={n_test}")
    k = d.size
    df = k - 1
    mean = float(d.mean())
    sd = float(np.sqrt((1.0 / k + n_test / n_train) * d.var(ddof=1)))
    if sd == 0.0 or np.isclose(sd, 0.0, atol=1e-15 * max(1.0, abs(mean))):
        if mean == 0.0:
            return TTestResult(t=0.0, p=1.0, df=df, mean_difference=mean, corrected_sd=0.0)
        return TTestResult(t=float(np.sign(mean) * np.inf), p=0.0, df=df, mean_difference=mean, corrected_sd=0.0)
    t = mean / sd
    p = float(2.0 * stats.t.sf(abs(t), df))
    return TTestResult(t=float(t), p=p, df=df, mean_difference=mean, corrected_sd=sd)
