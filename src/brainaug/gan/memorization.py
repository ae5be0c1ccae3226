"""The memorization gate: synthetic volumes that sit on a training scan are not used.

Generative models can reproduce their training patients (Akbar et al. 2023
found latent diffusion models doing so on brain MRI). A synthetic "new
subject" that is a copy adds no information to the classifier and leaks a
training scan into the synthetic cohort, so it is rejected whatever the
generator.

"Close" is measured against what is normal for this fold: the median
distance from the fold's *validation* volumes (real subjects the generator
never saw) to their nearest training volume. A synthetic volume whose nearest
training volume is closer than ``threshold`` times that median is rejected.
Validation volumes are used rather than test volumes so that no test scan
decides which training data the classifier gets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from brainaug.gan.quality import nearest_neighbour_distances

__all__ = ["GateResult", "reference_distance", "draw_through_gate"]


def reference_distance(train: np.ndarray, heldout: np.ndarray) -> float:
    """Median nearest-training-volume distance of real held-out volumes (leave-one-out within ``train`` if none)."""
    if len(heldout):
        return float(np.median(nearest_neighbour_distances(heldout, train)))
    if len(train) < 2:
        raise ValueError("memorization gate: needs held-out volumes or at least 2 training volumes")
    return float(np.median(nearest_neighbour_distances(train, train, exclude_identical_index=True)))


@dataclass
class GateResult:
    """Accepted volumes (``n_per_class`` of every class, grouped by class) and what the gate did."""

    volumes: np.ndarray
    labels: np.ndarray
    n_drawn: int
    n_rejected: int
    n_rejected_per_class: list[int]
    reference: float
    threshold: float


def draw_through_gate(
    draw: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
    train: np.ndarray,
    reference: float,
    threshold: float,
    n_classes: int,
    n_per_class: int,
    max_rounds: int = 5,
    where: str = "",
) -> GateResult:
    """Draw synthetic volumes in rounds until every class has ``n_per_class`` that pass the gate.

    Args:
        draw: ``draw(round, n_per_class)`` -> ``(volumes, labels)``, a fresh
            seeded batch for each round (round 0 is what an ungated run draws).
        train: the fold's training volumes ``(N, S, S, S)``.
        reference: :func:`reference_distance` of the fold.
        threshold: reject volumes nearer to a training volume than
            ``threshold * reference``; 0 switches the gate off.
        n_classes: number of diagnoses.
        n_per_class: accepted volumes wanted per class.
        max_rounds: rounds drawn before giving up.
        where: names the fold in errors.

    Raises:
        RuntimeError: when a class still lacks accepted volumes after ``max_rounds`` rounds.
    """
    limit = threshold * reference
    kept: list[list[np.ndarray]] = [[] for _ in range(n_classes)]
    rejected = [0] * n_classes
    drawn = 0
    for round_ in range(max_rounds):
        missing = max(n_per_class - len(k) for k in kept)
        if missing <= 0:
            break
        volumes, labels = draw(round_, n_per_class if round_ == 0 else missing)
        drawn += len(volumes)
        distances = nearest_neighbour_distances(volumes, train) if limit > 0 else np.full(len(volumes), np.inf)
        for volume, label, distance in zip(volumes, labels, distances):
            if distance < limit:
                rejected[int(label)] += 1
            elif len(kept[int(label)]) < n_per_class:
                kept[int(label)].append(volume)
    short = {k: len(v) for k, v in enumerate(kept) if len(v) < n_per_class}
    if short:
        detail = ", ".join(f"class {k}: {n} of {n_per_class}" for k, n in short.items())
        raise RuntimeError(
            f"{where}memorization gate: after {max_rounds} rounds ({drawn} volumes drawn) too few synthetic "
            f"volumes lie farther than {threshold} x {reference:.4g} from every training volume ({detail}); "
            "the generator is copying training scans. Train it differently, or lower gan.memorization_threshold."
        )
    volumes = np.stack([v for per_class in kept for v in per_class]).astype(np.float32, copy=False)
    labels = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    return GateResult(volumes, labels, drawn, int(sum(rejected)), rejected, reference, threshold)
