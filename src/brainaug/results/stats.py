"""Corrected (repeated) resampled t-test, its confidence intervals, and Holm's correction.

The folds' training sets overlap, so per-fold scores are correlated and the plain
paired t-test is far too optimistic. Nadeau & Bengio (2003, "Inference for the
generalization error", Machine Learning 52, Eq. 13 / the "corrected resampled
t-test") inflate the variance of the mean difference by the test/train size ratio;
Bouckaert & Frank (2004, "Evaluating the replicability of significance tests for
comparing learning algorithms", PAKDD) apply the same correction to r repetitions
of k-fold cross-validation (the "corrected repeated k-fold cv test"):

    t = mean(d) / sqrt((1/(k*r) + n_test/n_train) * var(d, ddof=1)),   df = k*r - 1,

with ``d`` the k*r per-fold score differences (every fold of every repeat). With
r = 1 this is Nadeau & Bengio's test. The same corrected standard error gives the
95% interval ``mean ± t_{0.975, df} * se`` of a mean score or of a mean difference.
No maintained dependency ships it (``mlxtend`` has only the uncorrected resampled
test, and scikit-learn writes it by hand in its example "Statistical comparison of
models using grid search"), so it is implemented here, checked against worked
examples. Several strategies tested against one baseline are several tests; Holm's
(1979) step-down adjustment (:func:`holm_adjust`) keeps the family-wise error rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["TTestResult", "corrected_interval", "corrected_resampled_ttest", "corrected_sd", "holm_adjust"]


@dataclass(frozen=True)
class TTestResult:
    """Result of :func:`corrected_resampled_ttest`.

    Attributes:
        t: the t statistic (``inf``/``-inf`` when all differences are equal and non-zero, 0 when all are 0).
        p: two-sided p-value.
        df: degrees of freedom (number of differences - 1, i.e. k*r - 1).
        mean_difference: mean of the per-fold differences.
        corrected_sd: ``sqrt((1/(k*r) + n_test/n_train) * var(d, ddof=1))``, the standard error of the mean.
        ci_low, ci_high: the corrected-t confidence interval of the mean difference
            (``confidence`` of the call, 95% by default).
    """

    t: float
    p: float
    df: int
    mean_difference: float
    corrected_sd: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")


def _values(values: Sequence[float] | np.ndarray, n_train: float, n_test: float, what: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"{what} must be a 1D sequence of at least 2 per-fold values, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{what} must be finite, got {v.tolist()}")
    if not (n_train > 0 and n_test > 0):
        raise ValueError(f"n_train and n_test must be > 0, got n_train={n_train}, n_test={n_test}")
    return v


def corrected_sd(values: Sequence[float] | np.ndarray, n_train: float, n_test: float) -> float:
    """Corrected standard error of the mean of per-fold values: ``sqrt((1/n + n_test/n_train) * var(ddof=1))``.

    Args:
        values: (n,) per-fold values, n = k*r (every fold of every repeat).
        n_train, n_test: training and test set sizes per fold, in the same unit.

    Raises:
        ValueError: fewer than 2 values, non-finite values, or non-positive sizes.
    """
    v = _values(values, n_train, n_test, "values")
    return float(np.sqrt((1.0 / v.size + n_test / n_train) * v.var(ddof=1)))


def corrected_interval(
    values: Sequence[float] | np.ndarray, n_train: float, n_test: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Corrected-t confidence interval of the mean of per-fold values (a score or a difference).

    ``mean ± t_{(1+confidence)/2, n-1} * corrected_sd``: the interval that inverts the
    corrected resampled t-test, so it excludes 0 exactly when that test's p is below
    ``1 - confidence``.

    Args:
        values: (n,) per-fold values, n = k*r.
        n_train, n_test: training and test set sizes per fold, in the same unit.
        confidence: coverage in (0, 1).

    Returns:
        ``(low, high)``; ``(mean, mean)`` when all values are equal.

    Raises:
        ValueError: as :func:`corrected_sd`, or a confidence outside (0, 1).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    v = _values(values, n_train, n_test, "values")
    mean, se = float(v.mean()), corrected_sd(v, n_train, n_test)
    half = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1)) * se
    return mean - half, mean + half


def corrected_resampled_ttest(
    differences: Sequence[float] | np.ndarray, n_train: float, n_test: float, confidence: float = 0.95
) -> TTestResult:
    """Corrected resampled t-test on per-fold score differences (Nadeau & Bengio; Bouckaert & Frank when repeated).

    Args:
        differences: (k*r,) per-fold differences, e.g. ``bacc(strategy) - bacc(standard)`` on each
            fold's test set, for every fold of every repeat (paired by repeat and fold).
        n_train: training set size per fold (a mean over folds is fine); subjects or scans, as long as
            ``n_test`` uses the same unit.
        n_test: test set size per fold.
        confidence: coverage of the interval of the mean difference (``ci_low``, ``ci_high``).

    Returns:
        :class:`TTestResult`. Zero variance (all differences equal) is defined as: ``t = 0, p = 1``
        when the differences are all 0 (no evidence of a difference), else ``t = ±inf, p = 0``
        (a perfectly consistent difference), rather than the NaN that 0/0 would give; the interval
        is then the single point ``mean``.

    Raises:
        ValueError: fewer than 2 differences, non-finite values, or non-positive sizes.
    """
    d = _values(differences, n_train, n_test, "differences")
    df = d.size - 1
    mean = float(d.mean())
    sd = corrected_sd(d, n_train, n_test)
    if sd == 0.0 or np.isclose(sd, 0.0, atol=1e-15 * max(1.0, abs(mean))):
        t, p = (0.0, 1.0) if mean == 0.0 else (float(np.sign(mean) * np.inf), 0.0)
        return TTestResult(t=t, p=p, df=df, mean_difference=mean, corrected_sd=0.0, ci_low=mean, ci_high=mean)
    t = mean / sd
    p = float(2.0 * stats.t.sf(abs(t), df))
    low, high = corrected_interval(d, n_train, n_test, confidence)
    return TTestResult(t=float(t), p=p, df=df, mean_difference=mean, corrected_sd=sd, ci_low=low, ci_high=high)


def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order.

    With the m finite p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the
    adjusted value of ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) * p_(j))``.
    Rejecting where the adjusted p is below alpha controls the family-wise error
    rate at alpha, for any dependence between the tests (they share the baseline here).
    Adjusted values are monotone in the raw ones and never smaller.

    Args:
        p_values: raw p-values; NaN entries (e.g. the baseline's own row) stay NaN and do
            not count towards m.

    Returns:
        float array of the same length.

    Raises:
        ValueError: a value outside [0, 1] (other than NaN), or input that is not 1D.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1D, got shape {p.shape}")
    finite = ~np.isnan(p)
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise ValueError(f"p_values must lie in [0, 1], got {p.tolist()}")
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(finite)
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out
