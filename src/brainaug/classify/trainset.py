"""Mix the fold's real training volumes with synthetic volumes from the fold's own GAN.

Only the *training* set is ever mixed; validation and test stay real (the caller
passes only real training volumes here, and :func:`brainaug.classify.train.run_fold`
checks the recorded IDs).

How many of each class: :func:`brainaug.strategies.synthetic_class_counts`.
Volumes are drawn without replacement from the synthetic pool of each class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainaug.strategies import Strategy, synthetic_class_counts

__all__ = ["build_training_set", "choose_synthetic"]


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
