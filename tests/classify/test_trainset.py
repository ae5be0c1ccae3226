from __future__ import annotations

import numpy as np
import pytest

from brainaug.classify.trainset import build_training_set, choose_synthetic
from brainaug.strategies import Strategy, largest_remainder, synthetic_class_counts

CLASSES = ["CN", "MCI", "AD"]


def _real(counts=(10, 6, 4), size=4):
    labels = np.repeat(np.arange(3), counts)
    vols = np.stack([np.full((size,) * 3, i, dtype=np.float32) for i in range(len(labels))])
    return vols, labels


def _pool(per_class=30, size=4):
    labels = np.repeat(np.arange(3), per_class)
    vols = np.stack([np.full((size,) * 3, 1000 + i, dtype=np.float32) for i in range(len(labels))])
    return vols, labels


def test_largest_remainder_sums_and_rounds():
    assert largest_remainder(10, [10, 6, 4]).tolist() == [5, 3, 2]
    assert largest_remainder(7, [1, 1, 1]).tolist() == [3, 2, 2]
    counts = largest_remainder(49, [50, 30, 20])
    assert counts.sum() == 49 and counts.tolist() == [24, 15, 10]  # 24.5, 14.7, 9.8
    with pytest.raises(ValueError, match="weights must be non-negative and not all zero"):
        largest_remainder(3, [0, 0])


def test_no_synthetic_when_share_zero():
    vols, labels = _real()
    pool_v, pool_y = _pool()
    out_v, out_y, is_syn = build_training_set(
        vols, labels, pool_v, pool_y, Strategy("standard"), np.random.default_rng(0), classes=CLASSES
    )
    assert not is_syn.any() and len(out_y) == 20
    np.testing.assert_array_equal(out_v, vols)
    # synthetic data is not even needed
    out_v, out_y, is_syn = build_training_set(vols, labels, None, None, Strategy("standard"), np.random.default_rng(0))
    assert len(out_y) == 20


@pytest.mark.parametrize(("share", "n_syn", "per_class"), [(0.5, 20, [10, 6, 4]), (0.33, 10, [5, 3, 2])])
def test_proportional_share_and_class_proportions(share, n_syn, per_class):
    vols, labels = _real()
    pool_v, pool_y = _pool()
    strategy = Strategy("g", synthetic_share=share)
    out_v, out_y, is_syn = build_training_set(vols, labels, pool_v, pool_y, strategy, np.random.default_rng(0), classes=CLASSES)
    assert is_syn.sum() == n_syn and len(out_y) == 20 + n_syn
    assert np.bincount(out_y[is_syn], minlength=3).tolist() == per_class
    # real part kept unchanged and first; synthetic volumes come from the pool, no repeats,
    # with labels that match the pool's
    np.testing.assert_array_equal(out_v[:20], vols)
    ids = out_v[is_syn][:, 0, 0, 0].astype(int) - 1000
    assert len(set(ids.tolist())) == n_syn
    np.testing.assert_array_equal(pool_y[ids], out_y[is_syn])
    assert abs(is_syn.mean() - share) < 0.02


def test_balanced_mode_splits_equally_remainder_to_rarest():
    labels = np.repeat(np.arange(3), (10, 6, 4))
    counts = synthetic_class_counts(labels, Strategy("b", 0.5, synthetic_balance="balanced"), 3)
    assert counts.tolist() == [6, 7, 7]
    counts = synthetic_class_counts(labels, Strategy("b", 0.33, synthetic_balance="balanced"), 3)
    assert counts.tolist() == [3, 3, 4]


def test_selection_is_seeded_and_without_replacement():
    labels = np.repeat(np.arange(3), (10, 6, 4))
    pool_y = np.repeat(np.arange(3), 12)
    strategy = Strategy("g", 0.5)
    a = choose_synthetic(labels, pool_y, strategy, np.random.default_rng(4), 3)
    b = choose_synthetic(labels, pool_y, strategy, np.random.default_rng(4), 3)
    c = choose_synthetic(labels, pool_y, strategy, np.random.default_rng(5), 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(np.unique(a)) == len(a) == 20


def test_too_small_pool_names_class_and_numbers():
    vols, labels = _real()
    pool_v, pool_y = _pool(per_class=5)
    with pytest.raises(ValueError, match=r"'gan50' needs 10 synthetic volumes of class 'CN' \(label 0\) but the synthetic pool holds only 5"):
        build_training_set(vols, labels, pool_v, pool_y, Strategy("gan50", 0.5), np.random.default_rng(0), classes=CLASSES)


def test_shape_and_missing_pool_errors():
    vols, labels = _real()
    with pytest.raises(ValueError, match="'gan50' has synthetic_share 0.5 but no synthetic volumes"):
        build_training_set(vols, labels, None, None, Strategy("gan50", 0.5), np.random.default_rng(0))
    pool_v, pool_y = _pool(size=5)
    with pytest.raises(ValueError, match=r"Synthetic volumes must have shape \(M, 4, 4, 4\)"):
        build_training_set(vols, labels, pool_v, pool_y, Strategy("gan50", 0.5), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"Expected real_volumes \(N, S, S, S\)"):
        build_training_set(vols[:3], labels, None, None, Strategy("s"), np.random.default_rng(0))
