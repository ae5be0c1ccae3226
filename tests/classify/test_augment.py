from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scipy import ndimage

from brainaug.classify.augment import (
    RandomStudyAugmentation,
    StudyAugmentationParams,
    apply_study_augmentation,
    fourier_shift,
    max_roll_voxels,
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
    out = rotate_axial(cylinder, 5.0, method="bilinear")
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
    out = rotate_axial(bar, 6.0, method="bilinear")
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
    with pytest.raises(ValueError, match=r"spacing must be three positive voxel sizes \(mm\) for x, y, z, got \(1.0, 0.0, 1.0\)"):
        rotate_axial(torch.zeros(4, 4, 4), 3.0, spacing=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"Unknown rotation method 'cubic'; expected one of \['fourier', 'bilinear'\]"):
        RandomStudyAugmentation(rotation="cubic")
    with pytest.raises(ValueError, match=r"Unknown augmentation steps 'shift'"):
        RandomStudyAugmentation(steps="shift")
    with pytest.raises(ValueError, match="max_shift_mm must be a positive number of mm, got 0"):
        max_roll_voxels(0, (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"one int or one per axis x, y, z\), got min_shift=1, max_shift=\(2, 0, 2\)"):
        RandomStudyAugmentation(max_shift=(2, 0, 2))


# --- The Fourier (three-shear) rotation: no blur, no shift of intensity statistics -----------

#: The template grid's voxels at 32^3 (mm): anisotropic, as the real volumes.
GRID32 = (4.75, 5.875, 5.078125)


def brain_like(seed: int = 0, size: int = 32) -> torch.Tensor:
    """A 'brain' on background -1: an ellipsoid of smoothed noise in [-0.9, 1] with a sharp rim."""
    rng = np.random.default_rng(seed)
    r = (np.arange(size) - (size - 1) / 2) / (size / 2)
    x, y, z = np.meshgrid(r, r, r, indexing="ij")
    inside = (x / 0.8) ** 2 + (y / 0.85) ** 2 + (z / 0.8) ** 2 <= 1.0
    texture = ndimage.gaussian_filter(rng.normal(size=(size,) * 3), 0.6)
    texture = np.clip(0.3 + 0.2 * texture / texture.std(), -0.9, 1.0)
    return torch.from_numpy(np.where(inside, texture, -1.0).astype(np.float32))


def _brain(v: torch.Tensor) -> np.ndarray:
    return v.numpy() > -1.0 + 1e-6


def high_frequency_energy(v: torch.Tensor, inner: np.ndarray) -> float:
    """Energy of the volume minus its Gaussian blur (sigma 1 voxel) in ``inner`` (away from the rim)."""
    a = v.double().numpy()
    return float(((a - ndimage.gaussian_filter(a, 1.0))[inner] ** 2).sum())


def _stats(v: torch.Tensor) -> np.ndarray:
    b = v.numpy()[_brain(v)]
    return np.array([b.mean(), b.std(), *np.percentile(b, [5, 25, 50, 75, 95])])


def test_fourier_rotation_by_zero_is_identity_also_through_the_batch_path():
    vol = brain_like(1)
    assert torch.equal(rotate_axial(vol, 0.0, spacing=GRID32), vol)
    out = rotate_axial_batch(vol[None, None], [0.0], spacing=GRID32)[0, 0]
    torch.testing.assert_close(out, vol, atol=1e-5, rtol=0)


def test_fourier_shift_is_unitary_and_exact_for_whole_voxels():
    x = torch.randn(2, 31, 5, dtype=torch.float64)
    shifted = fourier_shift(x, torch.full((1, 1, 5), 0.37, dtype=torch.float64), dim=1)
    torch.testing.assert_close(shifted.pow(2).sum(), x.pow(2).sum())
    whole = fourier_shift(x, torch.full((1, 1, 5), 3.0, dtype=torch.float64), dim=1)
    torch.testing.assert_close(whole, torch.roll(x, 3, dims=1))


@pytest.mark.parametrize("angle", [-6.0, 3.5, 6.0])
def test_fourier_rotation_keeps_energy_and_intensity_statistics(angle):
    vol = brain_like(2)
    out = rotate_axial(vol, angle, spacing=GRID32)
    before, after = (vol + 1).pow(2).sum().item(), (out + 1).pow(2).sum().item()
    assert after == pytest.approx(before, rel=0.02)
    np.testing.assert_allclose(_stats(out), _stats(vol), atol=0.02)
    # the background stays exactly background and no value leaves the original range
    brain = _brain(out)
    assert np.all(out.numpy()[~brain] == -1.0)
    assert out.min() >= vol.min() and out.max() <= vol.max()
    assert brain.sum() == pytest.approx(_brain(vol).sum(), rel=0.02)


def test_fourier_rotation_keeps_high_frequencies_and_bilinear_does_not():
    vol = brain_like(3)
    inner = ndimage.binary_erosion(_brain(vol), iterations=3)  # the texture, not the rim
    reference = high_frequency_energy(vol, inner)
    fourier = high_frequency_energy(rotate_axial(vol, 6.0, spacing=GRID32), inner)
    bilinear = high_frequency_energy(rotate_axial(vol, 6.0, spacing=GRID32, method="bilinear"), inner)
    assert fourier == pytest.approx(reference, rel=0.05)
    assert bilinear < 0.8 * reference


def _smooth_blob(size: int = 32) -> torch.Tensor:
    """An off-centre smooth blob well inside the field of view (no rim, so sinc is exact).

    Its peak is a voxel: the rotation clips to the volume's range, which would cut a
    peak that lies between voxels and is sampled closer after rotating.
    """
    r = np.arange(size) - (size - 1) / 2
    x, y, z = np.meshgrid(r, r, r, indexing="ij")
    return torch.from_numpy(np.exp(-((x - 4.5) ** 2 + (y + 2.5) ** 2 + z**2) / (2 * 2.5**2)).astype(np.float32) - 1.0)


def test_rotation_round_trips():
    blob = _smooth_blob()
    back = rotate_axial(rotate_axial(blob, 6.0, spacing=GRID32), -6.0, spacing=GRID32)
    torch.testing.assert_close(back, blob, atol=0.02, rtol=0)
    quarter = blob
    for _ in range(4):
        quarter = rotate_axial(quarter, 90.0)
    torch.testing.assert_close(quarter, blob, atol=0.02, rtol=0)
    # a textured brain with a rim comes back too, away from the rim
    vol = brain_like(4)
    back = rotate_axial(rotate_axial(vol, 5.0, spacing=GRID32), -5.0, spacing=GRID32)
    inner = torch.from_numpy(ndimage.binary_erosion(_brain(vol), iterations=2))
    assert (back - vol)[inner].abs().mean() < 0.02


def _moments_mm(v: torch.Tensor, spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Centre and covariance (mm) of the in-plane mass of ``v + 1`` (background -1)."""
    w = (v + 1).numpy().clip(min=0).sum(axis=2)
    i, j = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in w.shape), indexing="ij")
    p = np.stack([i * spacing[0], j * spacing[1]]).reshape(2, -1)
    m = w.ravel() / w.sum()
    centre = p @ m
    d = p - centre[:, None]
    return centre, (d * m) @ d.T


@pytest.mark.parametrize("method", ["fourier", "bilinear"])
def test_physical_rotation_maps_a_disc_to_a_disc_on_an_anisotropic_grid(method):
    spacing = (2.0, 4.0, 3.0)
    n = 48
    i, j, _ = np.meshgrid(*(np.arange(n) - (n - 1) / 2,) * 3, indexing="ij")
    px, py = i * spacing[0], j * spacing[1]
    disc = torch.from_numpy(np.where((px - 20) ** 2 + py**2 <= 14**2, 1.0, -1.0).astype(np.float32))
    centre, cov = _moments_mm(disc, spacing)
    out = rotate_axial(disc, 90.0, spacing=spacing, method=method)
    new_centre, new_cov = _moments_mm(out, spacing)
    # +x moves towards -y by 90 degrees in mm (20 mm = 10 x-voxels, 5 y-voxels)
    np.testing.assert_allclose(new_centre, [centre[1], -centre[0]], atol=0.6)
    # still the disc (variance r^2 / 4 up to voxelisation), its x and y spreads swapped, no shear
    assert np.diag(cov) == pytest.approx([14**2 / 4] * 2, rel=0.2)
    assert new_cov[0, 0] == pytest.approx(cov[1, 1], rel=0.1)  # bilinear blurs: a little wider
    assert new_cov[1, 1] == pytest.approx(cov[0, 0], rel=0.1)
    assert abs(new_cov[0, 1]) < 0.05 * cov[0, 0]
    # the index-space rotation (unit spacing) turns the same disc into an ellipse
    wrong = rotate_axial(disc, 90.0, method=method)
    _, wrong_cov = _moments_mm(wrong, spacing)
    assert wrong_cov[0, 0] / wrong_cov[1, 1] < 0.5


def test_rolls_in_mm_scale_per_axis():
    assert max_roll_voxels(10.5, GRID32) == (2, 2, 2)
    assert max_roll_voxels(10.5, (2.375, 2.9375, 2.5390625)) == (4, 4, 4)  # the study's 1-4 at 64^3
    assert max_roll_voxels(8.0, (1.0, 2.0, 4.0)) == (8, 4, 2)
    assert max_roll_voxels(1.0, (4.0, 4.0, 4.0)) == (1, 1, 1)  # never below one voxel
    aug = RandomStudyAugmentation.physical((1.0, 2.0, 4.0), 8.0, p_translate=1.0, p_axis=1.0)
    rng = np.random.default_rng(0)
    shifts = np.abs(np.array([aug.sample_params(rng).shifts for _ in range(2000)]))
    assert shifts.min(axis=0).tolist() == [1, 1, 1]
    assert shifts.max(axis=0).tolist() == [8, 4, 2]


def test_seeded_augmentation_is_deterministic_and_batch_matches_replay():
    batch = torch.stack([brain_like(s) for s in range(4)])[:, None]
    aug = RandomStudyAugmentation.physical(GRID32, 10.5)
    a, pa = aug.augment_batch(batch, np.random.default_rng(5))
    b, pb = aug.augment_batch(batch, np.random.default_rng(5))
    assert pa == pb and torch.equal(a, b)
    for v, o, p in zip(batch, a, pa):
        torch.testing.assert_close(o, apply_study_augmentation(v, p, spacing=GRID32), atol=1e-5, rtol=0)


def test_steps_switch_one_step_off_and_keep_the_draws_aligned():
    both, roll, rotate = (RandomStudyAugmentation(steps=s) for s in ("both", "roll", "rotate"))
    for k in range(50):
        p, pr, pt = both.sample_params(k), roll.sample_params(k), rotate.sample_params(k)
        assert (pr.translate, pr.shifts, pr.rotate, pr.angle_deg) == (p.translate, p.shifts, False, 0.0)
        assert (pt.translate, pt.shifts, pt.rotate, pt.angle_deg) == (False, (0, 0, 0), p.rotate, p.angle_deg)
