"""The memorization gate rejects synthetic volumes that sit on a training scan."""

from __future__ import annotations

import numpy as np
import pytest

from brainaug.gan.memorization import draw_through_gate, reference_distance


def _train(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, size=(n, 8, 8, 8)).astype(np.float32)


def test_copies_are_rejected_and_replaced():
    train = _train()
    fresh = np.random.default_rng(1)

    def draw(round_: int, n: int):
        labels = np.repeat(np.arange(2), n)
        if round_ == 0:  # every volume a copy (plus a hair of noise)
            volumes = train[labels % len(train)] + 1e-3
        else:
            volumes = fresh.uniform(-1, 1, size=(len(labels), 8, 8, 8)).astype(np.float32)
        return volumes, labels

    ref = reference_distance(train, _train(3) * 0.5)
    gate = draw_through_gate(draw, train, ref, 0.5, n_classes=2, n_per_class=3)
    assert gate.n_rejected == 6 and gate.n_rejected_per_class == [3, 3] and gate.n_drawn == 12
    assert gate.labels.tolist() == [0, 0, 0, 1, 1, 1]
    from brainaug.gan.quality import nearest_neighbour_distances

    assert nearest_neighbour_distances(gate.volumes, train).min() >= 0.5 * ref


def test_a_generator_that_only_copies_stops_the_run():
    train = _train()

    def draw(round_: int, n: int):
        labels = np.repeat(np.arange(2), n)
        return train[labels], labels

    with pytest.raises(RuntimeError, match="fold 3: memorization gate: after 5 rounds"):
        draw_through_gate(draw, train, 1.0, 0.5, 2, 2, where="fold 3: ")


def test_threshold_zero_accepts_everything():
    train = _train()

    def draw(round_: int, n: int):
        labels = np.repeat(np.arange(2), n)
        return train[labels], labels

    gate = draw_through_gate(draw, train, 1.0, 0.0, 2, 2)
    assert gate.n_rejected == 0 and gate.n_drawn == 4


def test_reference_without_heldout_is_leave_one_out():
    train = _train()
    assert reference_distance(train, train[:0]) > 0
