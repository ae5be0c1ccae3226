from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from brainaug.classify.augment import (
    RandomStudyAugmentation,
    StudyAugmentationParams,
    apply_study_augmentation,
    roll_volume,
    rotate_axial,
    rotate_axial_batch,
)

N_DRAWS = 4000
from brainaug.device import num_threads


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: faster and steadier on a shared 2-core machine."""
    with num_threads(1):
        yield


def _binomial_ok(count: int, n: int, p: float, z: float = 4.5) -> bool:
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p))


@pytest.fixture(scope="module")
def draws() -> list[StudyAugmentationParams]:
    aug = RandomStudyAugmentation()
    rng = np.random.default_rng(1234)
    return [aug.sample_params(rng) for _ in range(N_DRAWS)]


def test_translate_and_rotate_frequencies(draws):
    n_translate = sum(p.translate for p in draws)
    n_rotate = sum(p.rotate for p in draws)
    assert _binomial_ok(n_translate, N_DRAWS, 0.95)
    assert _binomial_ok(n_rotate, N_DRAWS, 0.9)
    translated = [p for p in draws if p.translate]
    for axis in range(3):
        shifted = sum(p.shifts[axis] != 0 for p in translated)
        assert _binomial_ok(shifted, len(translated), 0.66)
    # axes are independent: all three shifted about 0.66^3 of the time
    all_three = sum(all(s != 0 for s in p.shifts) for p in translated)
    assert _binomial_ok(all_three, len(translated), 0.66**3)


def test_ranges_and_signs(draws):
    shifts = np.array([p.shifts for p in draws])
    assert all(p.shifts == (0, 0, 0) for p in draws if not p.translate)
    nonzero = shifts[shifts != 0]
    assert set(np.abs(nonzero).tolist()) == {1, 2, 3, 4}
    assert (nonzero > 0).any() and (nonzero < 0).any()
    assert _binomial_ok(int((nonzero > 0).sum()), nonzero.size, 0.5)
    angles = np.array([p.angle_deg for p in draws if p.rotate])
    assert np.all(np.abs(angles) <= 6.0)
    assert angles.min() < -5.5 and angles.max() > 5.5
    assert abs(angles.mean()) < 0.3  # uniform on [-6, 6]: sd of mean ~0.058
    assert all(p.angle_deg == 0.0 for p in draws if not p.rotate)


def test_sampling_is_seeded():
    aug = RandomStudyAugmentation()
    a = [aug.sample_params(np.random.default_rng(7)) for _ in range(3)]
    b = [aug.sample_params(7) for _ in range(3)]
    assert a == b


def test_replay_recorded_params_gives_same_output():
    torch.manual_seed(0)
    vol = torch.rand(1, 12, 12, 12) * 2 - 1
    aug = RandomStudyAugmentation(p_translate=1.0, p_rotate=1.0)
    out = aug(vol, np.random.default_rng(3))
    params = aug.last_params
    assert params is not None and params.rotate and params.translate
    replay = apply_study_augmentation(vol, params)
    assert torch.equal(out, replay)
    assert out.shape == vol.shape and out.dtype == vol.dtype


def test_roll_is_exact_and_preserves_values():
    vol = torch.arange(5 * 6 * 7, dtype=torch.float32).reshape(5, 6, 7)
    out = roll_volume(vol, (2, -3, 0))
    assert torch.equal(torch.sort(out.flatten()).values, torch.sort(vol.flatten()).values)
    assert out[2, 0, 0] == vol[0, 3, 0]
    assert torch.equal(roll_volume(out, (-2, 3, 0)), vol)


def test_rotation_by_zero_is_identity():
    vol = torch.rand(1, 10, 10, 10)
    assert torch.equal(rotate_axial(vol, 0.0), vol)
    assert torch.equal(apply_study_augmentation(vol, StudyAugmentationParams()), vol)


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    c = (n - 1) / 2
    r = torch.arange(n, dtype=torch.float32) - c
    return torch.meshgrid(r, r, r, indexing="ij")


def test_rotation_keeps_a_z_cylinder_and_z_invariance():
    x, y, z = _grid(21)
    cylinder = torch.where(x**2 + y**2 <= 36.0, 1.0, -1.0)  # axis along z, centred
    out = rotate_axial(cylinder, 5.0)
    # constant along z stays constant along z (rotation acts in x-y only)
    assert torch.allclose(out, out[..., :1].expand_as(out), atol=1e-5)
    # a rotationally symmetric object is unchanged away from its rim
    inner = x**2 + y**2 <= 16.0
    outer = x**2 + y**2 >= 64.0
    assert torch.allclose(out[inner], torch.ones(int(inner.sum())), atol=1e-4)
    assert torch.allclose(out[outer], -torch.ones(int(outer.sum())), atol=1e-4)


def test_rotation_moves_an_off_centre_bar_and_pads_with_background():
    x, y, _ = _grid(21)
    bar = torch.where((x.abs() <= 1) & (y >= 3), 1.0, -1.0)  # bar along +y
    out = rotate_axial(bar, 6.0)
    assert not torch.allclose(out, bar, atol=0.1)
    # the z-profile is unchanged and corners (rotated in from outside) are background
    assert torch.allclose(out[..., 0], out[..., -1], atol=1e-5)
    assert out[0, 0, 5] == pytest.approx(-1.0, abs=1e-5)
    assert out.min() >= -1.0 - 1e-5 and out.max() <= 1.0 + 1e-5


def test_rotation_of_full_cube_fills_corners_with_background():
    vol = torch.ones(1, 16, 16, 4)
    out = rotate_axial(vol, 6.0, background=-1.0)
    assert out[0, 0, 0, 0] < 0.5  # corner pulled from outside -> towards background
    assert out[0, 8, 8, 0] == pytest.approx(1.0, abs=1e-5)


def test_augment_batch_independent_params_and_shapes():
    aug = RandomStudyAugmentation()
    batch = torch.rand(4, 1, 8, 8, 8)
    out, params = aug.augment_batch(batch, np.random.default_rng(0))
    assert out.shape == batch.shape and len(params) == 4
    assert len({(p.shifts, p.angle_deg) for p in params}) == 4
    with pytest.raises(ValueError, match=r"\(B, C, D, H, W\) tensor, got \(8, 8, 8\)"):
        aug.augment_batch(torch.rand(8, 8, 8))


def test_batch_path_matches_per_volume_replay():
    torch.manual_seed(1)
    batch = torch.rand(6, 1, 12, 12, 12) * 2 - 1
    aug = RandomStudyAugmentation()
    out, params = aug.augment_batch(batch, np.random.default_rng(11))
    assert any(p.rotate for p in params)
    for v, o, p in zip(batch, out, params):
        torch.testing.assert_close(o, apply_study_augmentation(v, p), atol=1e-4, rtol=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"p_rotate must be in \[0, 1\], got 1.5"):
        RandomStudyAugmentation(p_rotate=1.5)
    with pytest.raises(ValueError, match="min_shift <= max_shift"):
        RandomStudyAugmentation(min_shift=3, max_shift=2)
    with pytest.raises(ValueError, match=r"Expected a volume of shape .* got shape \(4, 4\)"):
        roll_volume(torch.zeros(4, 4), (1, 1, 1))
    with pytest.raises(TypeError, match="Expected a torch.Tensor volume, got ndarray"):
        rotate_axial(np.zeros((4, 4, 4)), 3.0)
    with pytest.raises(ValueError, match=r"expects \(B, C, D, H, W\) and B angles, got shape \(2, 1, 4, 4, 4\) and 1 angles"):
        rotate_axial_batch(torch.zeros(2, 1, 4, 4, 4), [3.0])
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        RandomStudyAugmentation().sample_params("seed")
