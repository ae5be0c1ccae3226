"""The template bundle and the output grid every volume shares."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from brainaug.template import CEREBRA_LABELS, grid_affine, grid_spacing, load_template, output_grid


def test_bundle_is_complete_and_aligned():
    t = load_template()
    for image in (t.t1_head, t.t1_brain, t.brain_mask, t.gm, t.wm, t.labels):
        assert image.GetSize() == t.t1_head.GetSize()
        assert image.GetOrigin() == t.t1_head.GetOrigin()
    labels = set(np.unique(sitk.GetArrayViewFromImage(t.labels)).tolist())
    assert labels == {0, *[v for pair in CEREBRA_LABELS.values() for v in pair]}
    brain = sitk.GetArrayViewFromImage(t.brain_mask) > 0
    # Hippocampus lies inside the brain mask; the skull lies outside it.
    hippo = np.isin(sitk.GetArrayViewFromImage(t.labels), CEREBRA_LABELS["hippocampus"])
    assert brain[hippo].mean() > 0.95
    head = sitk.GetArrayViewFromImage(t.t1_head)
    assert head[~brain].max() > 0.3


@pytest.mark.parametrize("size", [16, 32, 64])
def test_grid_affine_matches_the_sitk_grid(size):
    grid = output_grid(size)
    affine = grid_affine(size)
    for index in [(0, 0, 0), (size - 1, 3, 5), (2, size - 1, size - 1)]:
        lps = np.array(grid.TransformIndexToPhysicalPoint(index))
        ras = affine @ np.array([*index, 1.0])
        assert np.allclose(ras[:3], lps * [-1, -1, 1], atol=1e-6)


def test_grid_holds_the_whole_brain():
    grid = output_grid(32)
    mask = sitk.Resample(load_template().brain_mask, grid, sitk.Transform(), sitk.sitkNearestNeighbor)
    arr = sitk.GetArrayViewFromImage(mask)
    assert arr.sum() > 0.3 * arr.size
    # A margin of background on every face: nothing of the brain is cut off.
    for face in (arr[0], arr[-1], arr[:, 0], arr[:, -1], arr[:, :, 0], arr[:, :, -1]):
        assert face.sum() == 0


def test_grid_rejects_sizes_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="image_size must be a power of two >= 8, got 48"):
        output_grid(48)


def test_grid_spacing_is_the_affine_voxel_size_and_anisotropic():
    for size in (32, 64):
        assert grid_spacing(size) == pytest.approx(output_grid(size).GetSpacing())
    assert grid_spacing(32) == pytest.approx((4.75, 5.875, 5.078125))
    assert grid_spacing(64) == pytest.approx(tuple(s / 2 for s in grid_spacing(32)))
