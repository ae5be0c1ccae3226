"""GAN quality: MMD, MS-SSIM diversity and memorization on tiny synthetic volumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from brainaug.gan.quality import (
    QualitySettings,
    gan_quality,
    mmd_score,
    ms_ssim_diversity,
    ms_ssim_params,
    nearest_neighbour_distances,
)

CLASSES = ["CN", "AD"]


def _volumes(n: int, size: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """A bright cube on a -1 background plus noise: a crude 'brain' population."""
    rng = np.random.default_rng(seed)
    base = np.full((size, size, size), -1.0, np.float32)
    q = size // 4
    base[q : size - q, q : size - q, q : size - q] = 0.3
    noise = 0.2 * rng.standard_normal((n, size, size, size)).astype(np.float32)
    return np.clip(base + shift + noise, -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def fold16():
    real = _volumes(12, 16, seed=1)
    held = _volumes(8, 16, seed=2)
    return real, np.arange(12) % 2, held, np.arange(8) % 2


def test_identical_sets_give_mmd_near_zero_and_shift_gives_more(fold16):
    real, y, held, yh = fold16
    same = gan_quality(real, y, real.copy(), y, held, yh, CLASSES, seed=0, max_pairs=6)
    shifted = gan_quality(real, y, np.clip(real + 0.4, -1, 1), y, held, yh, CLASSES, seed=0, max_pairs=6)
    assert abs(same["overall"]["mmd"]) < 0.01
    assert shifted["overall"]["mmd"] > 0.05
    assert shifted["overall"]["mmd"] > 10 * abs(same["overall"]["mmd"])
    for name in CLASSES:
        assert shifted["per_class"][name]["mmd"] > abs(same["per_class"][name]["mmd"])


def test_copies_are_memorized_and_fresh_samples_are_not(fold16):
    real, y, held, yh = fold16
    copies = gan_quality(real, y, real[::-1].copy(), y[::-1].copy(), held, yh, CLASSES, max_pairs=4)
    fresh_vols = _volumes(10, 16, seed=3)
    fresh = gan_quality(real, y, fresh_vols, np.arange(10) % 2, held, yh, CLASSES, max_pairs=4)
    assert copies["overall"]["memorization_ratio"] < 1e-3
    assert copies["overall"]["median_nn_synthetic"] < 1e-3
    assert 0.9 < fresh["overall"]["memorization_ratio"] < 1.1
    assert copies["per_class"]["AD"]["memorization_ratio"] < 1e-3


def test_result_is_json_serialisable_deterministic_and_counts_per_class(fold16):
    real, y, held, yh = fold16
    syn = _volumes(6, 16, seed=4)
    ys = np.array([0, 0, 0, 0, 1, 1])
    a = gan_quality(real, y, syn, ys, held, yh, CLASSES, seed=7, max_pairs=5)
    b = gan_quality(torch.from_numpy(real), torch.from_numpy(y), syn, ys, held, yh, CLASSES, seed=7, max_pairs=5)
    assert json.dumps(a) == json.dumps(b)
    assert a["per_class"]["CN"]["n_synthetic"] == 4 and a["per_class"]["AD"]["n_synthetic"] == 2
    assert a["per_class"]["AD"]["n_real_train"] == 6 and a["overall"]["n_heldout"] == 8
    assert a["image_shape"] == [16, 16, 16] and a["ms_ssim_params"]["n_scales"] == 3


def test_class_with_one_volume_gives_none_not_crash(fold16):
    real, y, held, yh = fold16
    q = gan_quality(real, y, real[:3], np.array([0, 0, 1]), held[:0], yh[:0], CLASSES, max_pairs=4)
    ad = q["per_class"]["AD"]
    assert ad["mmd"] is None and ad["ms_ssim_synthetic"] is None
    assert ad["memorization_ratio"] is None and ad["median_nn_heldout"] is None


def test_ms_ssim_of_identical_pair_is_one_and_diversity_orders():
    vol = _volumes(1, 16, seed=5)
    twins = np.concatenate([vol, vol])
    rng = np.random.default_rng(0)
    assert ms_ssim_diversity(twins, rng) == pytest.approx(1.0, abs=1e-5)
    noisy = _volumes(6, 16, seed=6)
    assert ms_ssim_diversity(noisy, rng) < 0.99


@pytest.mark.parametrize("size,scales", [(16, 3), (32, 4), (64, 5)])
def test_ms_ssim_params_are_accepted_by_monai(size, scales):
    params = ms_ssim_params(size)
    assert params["n_scales"] == scales
    assert sum(params["weights"]) == pytest.approx(1.0)
    vols = _volumes(2, size, seed=size)
    value = ms_ssim_diversity(vols, np.random.default_rng(0), params=params)
    assert 0.0 <= value < 1.0


def test_gan_quality_runs_at_64():
    real = _volumes(3, 64, seed=8)
    q = gan_quality(real, [0, 1, 0], _volumes(2, 64, seed=9), [0, 1], real[:0], [], CLASSES, max_pairs=2)
    assert q["image_shape"] == [64, 64, 64]
    assert q["overall"]["ms_ssim_synthetic"] is not None and q["overall"]["memorization_ratio"] is None


def test_ms_ssim_params_rejects_tiny_images():
    with pytest.raises(ValueError, match="too small"):
        ms_ssim_params(2)


def test_nearest_neighbour_distance_is_rms_and_chunking_agrees():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((5, 4, 4, 4))
    q = ref[[3, 1]] + 0.5
    d = nearest_neighbour_distances(q, ref, chunk=2)
    np.testing.assert_allclose(d, [0.5, 0.5], atol=1e-9)
    np.testing.assert_allclose(nearest_neighbour_distances(q, ref, chunk=1), d)


def test_mmd_needs_two_volumes():
    assert mmd_score(np.zeros((1, 4, 4, 4)), np.zeros((3, 4, 4, 4)), np.random.default_rng(0)) is None


def test_bad_inputs_raise_clear_errors(fold16):
    real, y, held, yh = fold16
    with pytest.raises(ValueError, match="synthetic volumes have shape"):
        gan_quality(real, y, _volumes(2, 8, seed=0), [0, 1], held, yh, CLASSES)
    with pytest.raises(ValueError, match="synthetic_labels must lie in"):
        gan_quality(real, y, real[:2], [0, 2], held, yh, CLASSES)
    with pytest.raises(ValueError, match="real_train_labels must be a 1D array"):
        gan_quality(real, y[:3], real[:2], [0, 1], held, yh, CLASSES)
    with pytest.raises(ValueError, match=r"real_train must have shape \(N, D, H, W\)"):
        gan_quality(real[0], y, real[:2], [0, 1], held, yh, CLASSES)
    with pytest.raises(TypeError, match="synthetic_labels must hold integer labels"):
        gan_quality(real, y, real[:2], [0.0, 1.0], held, yh, CLASSES)


def test_settings_from_config_defaults_and_unknown_keys():
    s = QualitySettings.from_config({"max_pairs": 10})
    assert s.kwargs() == {
        "max_pairs": 10,
        "mmd_repeats": 8,
        "mmd_batch_size": 32,
        "ms_ssim_kernel_size": 3,
        "ms_ssim_kernel_sigma": 1.0,
    }
    assert QualitySettings.from_config(None) == QualitySettings.from_config({})
    with pytest.raises(ValueError, match=r"gan.quality config section: unknown keys \['pairs'\]"):
        QualitySettings.from_config({"pairs": 3})
