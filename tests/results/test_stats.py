"""Corrected (repeated) resampled t-test, its intervals and Holm's adjustment, against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from brainaug.results.stats import corrected_interval, corrected_resampled_ttest, corrected_sd, holm_adjust

D = [0.02, 0.05, -0.01, 0.04, 0.03, 0.01]


def test_matches_worked_example():
    # By hand: mean = 0.14 / 6; sum of squared deviations / 5 = sample variance;
    # correction factor 1/6 + 10/50 = 11/30.
    k = 6
    mean = sum(D) / k
    var = sum((x - mean) ** 2 for x in D) / (k - 1)
    t_expected = mean / math.sqrt((1 / k + 10 / 50) * var)
    p_expected = 2 * (1 - stats.t.cdf(abs(t_expected), k - 1))
    res = corrected_resampled_ttest(D, n_train=50, n_test=10)
    assert res.t == pytest.approx(t_expected, rel=1e-12)
    assert res.p == pytest.approx(p_expected, rel=1e-9)
    assert res.df == 5
    assert res.t == pytest.approx(1.7838, abs=1e-4)  # 0.023333 / sqrt(11/30 * 0.00046667)


def test_correction_makes_test_more_conservative_than_paired_t():
    plain = stats.ttest_1samp(D, 0.0)
    res = corrected_resampled_ttest(D, n_train=50, n_test=10)
    assert abs(res.t) < abs(plain.statistic)
    assert res.p > plain.pvalue


def test_sign_follows_the_differences():
    assert corrected_resampled_ttest(-np.array(D), 50, 10).t < 0


def test_zero_variance_is_defined():
    none = corrected_resampled_ttest([0.0] * 6, 50, 10)
    assert (none.t, none.p) == (0.0, 1.0)
    same = corrected_resampled_ttest([0.1] * 6, 50, 10)
    assert same.t == math.inf and same.p == 0.0
    worse = corrected_resampled_ttest([-0.1] * 6, 50, 10)
    assert worse.t == -math.inf and worse.p == 0.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 per-fold values"):
        corrected_resampled_ttest([0.1], 50, 10)
    with pytest.raises(ValueError, match="n_train and n_test must be > 0"):
        corrected_resampled_ttest(D, 0, 10)
    with pytest.raises(ValueError, match="must be finite"):
        corrected_resampled_ttest([0.1, float("nan")], 50, 10)


def test_repeated_cv_uses_k_times_r_folds():
    """Bouckaert & Frank: r = 2 repeats of k = 3 folds give 6 differences, correction 1/(k*r) + n_test/n_train
    = 1/6 + 10/50 and df = k*r - 1 = 5: the worked example above, read as 2 x 3-fold CV."""
    res = corrected_resampled_ttest(D, n_train=50, n_test=10)
    assert res.df == 5
    assert res.corrected_sd == pytest.approx(0.0130809, abs=1e-7)  # sqrt(11/30 * 0.00046667)
    # 95% interval by hand: 0.023333 ± t(0.975, 5) * 0.0130809, t(0.975, 5) = 2.570582 (t table).
    assert res.ci_low == pytest.approx(0.023333 - 2.570582 * 0.0130809, abs=1e-5)
    assert res.ci_high == pytest.approx(0.023333 + 2.570582 * 0.0130809, abs=1e-5)
    assert (res.ci_low, res.ci_high) == pytest.approx((-0.010292, 0.056959), abs=1e-5)
    assert corrected_interval(D, 50, 10) == pytest.approx((res.ci_low, res.ci_high))
    assert corrected_sd(D, 50, 10) == pytest.approx(res.corrected_sd)


def test_interval_excludes_zero_exactly_when_p_is_below_alpha():
    rng = np.random.default_rng(0)
    for _ in range(50):
        d = rng.normal(0.03, 0.04, size=12)
        res = corrected_resampled_ttest(d, n_train=40, n_test=8)
        assert (res.p < 0.05) == (res.ci_low > 0 or res.ci_high < 0)


def test_interval_of_a_mean_score_and_its_width():
    scores = [0.60, 0.70, 0.65, 0.55, 0.75, 0.66]
    low, high = corrected_interval(scores, n_train=50, n_test=10)
    assert low < np.mean(scores) < high
    assert (low + high) / 2 == pytest.approx(np.mean(scores))
    narrow = corrected_interval(scores, 50, 10, confidence=0.8)
    assert low < narrow[0] < narrow[1] < high
    assert corrected_interval([0.7] * 4, 50, 10) == (pytest.approx(0.7), pytest.approx(0.7))
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        corrected_interval(scores, 50, 10, confidence=95)


def test_zero_variance_interval_is_the_mean():
    same = corrected_resampled_ttest([0.1] * 6, 50, 10)
    assert same.ci_low == same.ci_high == pytest.approx(0.1)


def test_holm_by_hand():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06.
    adjusted = holm_adjust([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Capped at 1; NaN (the baseline's own row) stays NaN and does not count.
    capped = holm_adjust([float("nan"), 0.5, 0.6])
    assert np.isnan(capped[0]) and capped[1:] == pytest.approx([1.0, 1.0])
    assert np.isnan(holm_adjust([float("nan")])).all()
    assert holm_adjust([0.2]) == pytest.approx([0.2])


def test_holm_is_monotone_and_never_below_the_raw_p():
    rng = np.random.default_rng(1)
    for _ in range(100):
        p = rng.uniform(0, 0.2, size=int(rng.integers(1, 8)))
        adjusted = holm_adjust(p)
        assert (adjusted >= p - 1e-15).all() and (adjusted <= 1).all()
        order = np.argsort(p)
        assert (np.diff(adjusted[order]) >= -1e-15).all()  # same order as the raw p-values
        assert adjusted[order[0]] == pytest.approx(min(1.0, len(p) * p[order[0]]))


def test_holm_rejects_bad_p():
    with pytest.raises(ValueError, match=r"p_values must lie in \[0, 1\]"):
        holm_adjust([0.1, 1.5])
    with pytest.raises(ValueError, match="p_values must be 1D"):
        holm_adjust([[0.1]])
