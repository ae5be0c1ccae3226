"""Fréchet distance: closed form for Gaussians, identity, agreement with MONAI, small-N robustness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import FIDMetric

from brainaug.results.frechet import frechet_distance, gaussian_frechet_distance


def test_gaussian_closed_form_diagonal():
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    # diagonal case: ||mu_a - mu_b||^2 + sum (sqrt(var_a) - sqrt(var_b))^2 = 5 + (1 + 1 + 4)
    expected = 5.0 + 6.0
    got = gaussian_frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b))
    assert got == pytest.approx(expected, rel=1e-10)


def test_sampled_gaussians_approach_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal([0.0, 0.0], [1.0, 2.0], size=(20000, 2))
    b = rng.normal([3.0, 0.0], [1.0, 1.0], size=(20000, 2))
    assert frechet_distance(a, b) == pytest.approx(9.0 + 1.0, rel=0.03)


def test_identical_sets_give_zero_and_is_symmetric():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((50, 8))
    b = rng.standard_normal((40, 8)) + 0.5
    assert frechet_distance(a, a.copy()) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MONAI passes scipy's deprecated sqrtm(disp=)
def test_agrees_with_monai_on_well_conditioned_features():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((200, 5))
    b = rng.standard_normal((150, 5)) * 1.5 + 0.3
    ours = frechet_distance(a, b, eps=0.0)
    monai = float(FIDMetric()(torch.from_numpy(a), torch.from_numpy(b)))
    assert ours == pytest.approx(monai, rel=1e-6)


def test_fewer_samples_than_features_is_finite_and_real():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 64))
    b = rng.standard_normal((5, 64)) + 1.0
    d = frechet_distance(a, b)
    assert np.isfinite(d) and d > 0
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_bad_shapes():
    with pytest.raises(ValueError, match="different|has 3 features"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 2 feature vectors"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"shape \(N, F\)"):
        frechet_distance(np.zeros(4), np.zeros((4, 1)))
