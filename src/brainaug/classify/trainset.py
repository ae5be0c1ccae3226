"""Mix the fold's real training volumes with synthetic volumes from the fold's own GAN.

Only the *training* set is ever mixed; validation and test stay real (the caller
passes only real training volumes here, and :func:`brainaug.classify.train.run_fold`
checks the recorded IDs).

How many: ``n_syn = n_synthetic_for(n_real, strategy.synthetic_share)`` so that the
synthetic volumes are ``share`` of the final training set (see
:mod:`brainaug.strategies`). Which classes:

- ``"proportional"``: per-class counts follow the real training set's class counts,
  ``n_syn * n_real_c / n_real`` rounded by the largest-remainder method (so they sum
  to ``n_syn``; ties go to the lower label);
- ``"balanced"``: ``n_syn`` split equally over the classes present in the real
  training set; the remainder goes to the classes with the fewest real volumes.

Volumes are drawn without replacement from the synthetic pool of each class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainaug.strategies import Strategy, n_synthetic_for

__all__ = ["build_training_set", "choose_synthetic", "largest_remainder", "synthetic_class_counts"]


def largest_remainder(total: int, weights: Sequence[float]) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (Hamilton's method).

    Args:
        total: non-negative integer to split.
        weights: non-negative weights, not all zero.

    Returns:
        int64 array, same length as ``weights``, summing to ``total``; ties in the
        fractional parts go to the lower index.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or len(w) == 0 or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative and not all zero, got {list(w)}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    quotas = total * w / w.sum()
    counts = np.floor(quotas).astype(np.int64)
    rest = int(total - counts.sum())
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


def synthetic_class_counts(real_labels: np.ndarray, strategy: Strategy, n_classes: int) -> np.ndarray:
    """Number of synthetic volumes per class (length ``n_classes``) for this strategy.

    Args:
        real_labels: int labels ``(N_real,)`` of the real training set.
        strategy: gives the synthetic share and balance mode.
        n_classes: number of classes.
    """
    real_labels = np.asarray(real_labels, dtype=np.int64)
    if real_labels.size and (real_labels.min() < 0 or real_labels.max() >= n_classes):
        raise ValueError(
            f"real_labels must lie in [0, {n_classes - 1}], got range "
            f"[{real_labels.min()}, {real_labels.max()}]"
        )
    n_syn = n_synthetic_for(int(real_labels.size), strategy.synthetic_share)
    real_counts = np.bincount(real_labels, minlength=n_classes)
    if n_syn == 0:
        return np.zeros(n_classes, dtype=np.int64)
    if strategy.synthetic_balance == "proportional":
        return largest_remainder(n_syn, real_counts)
    present = np.flatnonzero(real_counts > 0)
    counts = np.zeros(n_classes, dtype=np.int64)
    counts[present] = n_syn // len(present)
    rest = n_syn - int(counts.sum())
    # The remainder goes to the rarest real classes first (ties: lower label).
    rarest = present[np.argsort(real_counts[present], kind="stable")]
    counts[rarest[:rest]] += 1
    return counts


def choose_synthetic(
    real_labels: np.ndarray,
    synthetic_labels: np.ndarray,
    strategy: Strategy,
    rng: np.random.Generator,
    n_classes: int,
    classes: Sequence[str] | None = None,
) -> np.ndarray:
    """Indices into the synthetic pool to add to the training set (sorted).

    Args:
        real_labels: labels ``(N_real,)`` of the real training set.
        synthetic_labels: labels ``(M,)`` of the fold's synthetic pool.
        strategy: synthetic share and balance mode.
        rng: numpy Generator (advanced in place).
        n_classes: number of classes.
        classes: class names, for error messages.

    Raises:
        ValueError: when the pool holds too few volumes of a class (names the class,
            how many are needed and how many there are).
    """
    counts = synthetic_class_counts(real_labels, strategy, n_classes)
    synthetic_labels = np.asarray(synthetic_labels, dtype=np.int64)
    chosen: list[np.ndarray] = []
    for c in range(n_classes):
        need = int(counts[c])
        if need == 0:
            continue
        pool = np.flatnonzero(synthetic_labels == c)
        if len(pool) < need:
            name = classes[c] if classes is not None else str(c)
            raise ValueError(
                f"Strategy {strategy.name!r} needs {need} synthetic volumes of class {name!r} "
                f"(label {c}) but the synthetic pool holds only {len(pool)}; generate more "
                "synthetic volumes per class in the GAN step"
            )
        chosen.append(rng.choice(pool, size=need, replace=False))
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def build_training_set(
    real_volumes: np.ndarray,
    real_labels: np.ndarray,
    synthetic_volumes: np.ndarray | None,
    synthetic_labels: np.ndarray | None,
    strategy: Strategy,
    rng: np.random.Generator,
    n_classes: int | None = None,
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real training volumes plus the strategy's share of synthetic ones.

    Args:
        real_volumes: float32 ``(N, S, S, S)`` real training volumes.
        real_labels: int ``(N,)``.
        synthetic_volumes: float32 ``(M, S, S, S)`` pool from the fold's GAN, or None
            (allowed only when the strategy uses no synthetic data).
        synthetic_labels: int ``(M,)`` or None.
        strategy: the augmentation strategy.
        rng: numpy Generator used to pick the synthetic subset.
        n_classes: number of classes (default: ``len(classes)`` or 1 + max label seen).
        classes: class names, for error messages.

    Returns:
        ``(volumes (N + K, S, S, S) float32, labels (N + K,) int64, is_synthetic (N + K,) bool)``,
        real volumes first.
    """
    real_volumes = np.asarray(real_volumes, dtype=np.float32)
    real_labels = np.asarray(real_labels, dtype=np.int64)
    if real_volumes.ndim != 4 or len(real_volumes) != len(real_labels):
        raise ValueError(
            f"Expected real_volumes (N, S, S, S) with N = len(real_labels) = {len(real_labels)}, "
            f"got shape {real_volumes.shape}"
        )
    if n_classes is None:
        if classes is not None:
            n_classes = len(classes)
        else:
            seen = [real_labels.max(initial=-1)]
            if synthetic_labels is not None and len(synthetic_labels):
                seen.append(np.max(synthetic_labels))
            n_classes = int(max(seen)) + 1
    is_real = np.zeros(len(real_labels), dtype=bool)
    if not strategy.uses_synthetic:
        return real_volumes, real_labels, is_real
    if synthetic_volumes is None or synthetic_labels is None:
        raise ValueError(
            f"Strategy {strategy.name!r} has synthetic_share {strategy.synthetic_share} but no "
            "synthetic volumes were given"
        )
    synthetic_labels = np.asarray(synthetic_labels, dtype=np.int64)
    if synthetic_volumes.ndim != 4 or synthetic_volumes.shape[1:] != real_volumes.shape[1:]:
        raise ValueError(
            f"Synthetic volumes must have shape (M, {', '.join(map(str, real_volumes.shape[1:]))}) "
            f"like the real ones, got {synthetic_volumes.shape}"
        )
    if len(synthetic_volumes) != len(synthetic_labels):
        raise ValueError(
            f"Got {len(synthetic_volumes)} synthetic volumes but {len(synthetic_labels)} labels"
        )
    index = choose_synthetic(real_labels, synthetic_labels, strategy, rng, n_classes, classes)
    volumes = np.concatenate([real_volumes, np.asarray(synthetic_volumes[index], dtype=np.float32)])
    labels = np.concatenate([real_labels, synthetic_labels[index]])
    is_synthetic = np.concatenate([is_real, np.ones(len(index), dtype=bool)])
    return volumes, labels, is_synthetic
