"""Chance intervals of cross-validated scores (brainaug.results.chance)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from brainaug.results.chance import balanced_accuracy, binomial_chance_interval, permutation_chance_interval


def test_balanced_accuracy_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    assert balanced_accuracy(true, pred) == pytest.approx(balanced_accuracy_score(true, pred))
    with pytest.raises(ValueError, match="one length"):
        balanced_accuracy(true, pred[:-1])


def test_permutation_interval_is_centred_on_chance_and_narrows_with_folds() -> None:
    rng = np.random.default_rng(1)
    folds = [(np.repeat([0, 1, 2], 4), rng.integers(0, 3, 12)) for _ in range(6)]
    six = permutation_chance_interval(folds, n_permutations=2000)
    one = permutation_chance_interval(folds[:1], n_permutations=2000)
    assert six.centre == pytest.approx(1 / 3, abs=0.02)
    assert six.low < 1 / 3 < six.high
    assert one.high - one.low > six.high - six.low  # averaging over folds narrows it
    assert not six.contains(0.9) and six.contains(1 / 3)
    # A classifier that predicts one class always scores exactly chance, whatever the permutation.
    constant = permutation_chance_interval([(np.repeat([0, 1, 2], 4), np.zeros(12, int))], n_permutations=100)
    assert constant.low == constant.high == pytest.approx(1 / 3)
    assert permutation_chance_interval(folds, n_permutations=500, seed=5) == permutation_chance_interval(
        folds, n_permutations=500, seed=5
    )


def test_permutation_interval_of_another_score() -> None:
    """A macro AUC from probabilities: chance is 0.5."""
    rng = np.random.default_rng(2)
    folds = [(np.repeat([0, 1, 2], 4), rng.dirichlet(np.ones(3), 12)) for _ in range(6)]
    auc = permutation_chance_interval(
        folds, n_permutations=300, score=lambda y, p: roc_auc_score(y, p, multi_class="ovr", average="macro")
    )
    assert auc.centre == pytest.approx(0.5, abs=0.02) and auc.low < 0.5 < auc.high


def test_binomial_interval() -> None:
    chance = binomial_chance_interval(60, 3)
    assert chance.centre == pytest.approx(1 / 3)
    assert 0.2 < chance.low < 1 / 3 < chance.high < 0.47
    with pytest.raises(ValueError, match="n_classes"):
        binomial_chance_interval(60, 1)
