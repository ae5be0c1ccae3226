"""What chance looks like for a cross-validated score: the interval a label-blind classifier falls in.

Why: "33 % for three classes" is only the centre. With 10 test subjects per
fold, a classifier that knows nothing scores anywhere from about 20 % to 50 %
in one fold, and the mean over six folds still spreads by several points. A
negative control (shuffled labels) passes only if its score lies inside that
spread, so the spread has to be computed for the test sets the run really had.

Two intervals:

* :func:`permutation_chance_interval`: the test labels of each fold are
  permuted against the run's own predictions, and the fold-mean score
  (balanced accuracy, or any other) recomputed; the central 95 % of those means. It keeps each fold's
  class counts and the classifier's own distribution of predicted classes, so
  it answers exactly "what would this classifier score if its predictions
  carried no information about the labels".
* :func:`binomial_chance_interval`: accuracy of a classifier guessing among
  ``n_classes`` classes uniformly, pooled over ``n`` test subjects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["ChanceInterval", "balanced_accuracy", "binomial_chance_interval", "permutation_chance_interval"]


@dataclass(frozen=True)
class ChanceInterval:
    """A central interval of a score under chance.

    Attributes:
        low, high: the interval's bounds (fractions).
        centre: the mean (permutation) or expected value (binomial) under chance.
        level: the coverage, e.g. 0.95.
    """

    low: float
    high: float
    centre: float
    level: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (bounds included)."""
        return self.low <= value <= self.high


def balanced_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``true`` (scikit-learn's definition)."""
    true, pred = np.asarray(true), np.asarray(pred)
    if true.shape != pred.shape or true.ndim != 1 or len(true) == 0:
        raise ValueError(f"true and pred must be non-empty 1-D arrays of one length, got {true.shape} and {pred.shape}")
    return float(np.mean([np.mean(pred[true == c] == c) for c in np.unique(true)]))


def permutation_chance_interval(
    folds: Sequence[tuple[Sequence[int], np.ndarray]],
    n_permutations: int = 10000,
    level: float = 0.95,
    seed: int = 0,
    score: Callable[[np.ndarray, np.ndarray], float] = balanced_accuracy,
) -> ChanceInterval:
    """Interval of a fold-mean score when labels carry no information.

    Args:
        folds: per fold, ``(true labels, predictions)`` of its test subjects; predictions
            are what ``score`` takes (labels for balanced accuracy, an ``(n, classes)``
            probability array for a macro AUC).
        n_permutations: permutations drawn (each permutes every fold's labels).
        level: coverage of the central interval.
        seed: seed of the permutations.
        score: ``score(true, predictions)``; default :func:`balanced_accuracy`.

    Returns:
        The central ``level`` interval of the permuted fold-mean scores.
    """
    if not folds:
        raise ValueError("folds is empty: give (true, pred) label arrays of at least one fold")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    scores = np.zeros(n_permutations)
    for true, pred in folds:
        true, pred = np.asarray(true), np.asarray(pred)
        score(true, pred)  # fails here, naming the problem, if the fold is malformed
        for i in range(n_permutations):
            scores[i] += score(rng.permutation(true), pred)
    scores /= len(folds)
    tail = (1 - level) / 2
    low, high = np.quantile(scores, [tail, 1 - tail])
    return ChanceInterval(float(low), float(high), float(scores.mean()), level)


def binomial_chance_interval(n: int, n_classes: int, level: float = 0.95) -> ChanceInterval:
    """Accuracy interval of uniform guessing among ``n_classes`` over ``n`` test subjects.

    Args:
        n: test subjects pooled over the folds.
        n_classes: number of classes (chance is ``1 / n_classes``).
        level: coverage of the central interval.
    """
    if n < 1 or n_classes < 2:
        raise ValueError(f"need n >= 1 and n_classes >= 2, got n={n}, n_classes={n_classes}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    p = 1.0 / n_classes
    low, high = stats.binom.interval(level, n, p)
    return ChanceInterval(float(low) / n, float(high) / n, p, level)
