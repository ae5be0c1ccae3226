"""Corrected resampled t-test (Nadeau & Bengio 2003) against a hand-computed example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from brainaug.results.stats import corrected_resampled_ttest

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
