"""The MNI template bundle shipped with brainaug, and the output grid built on it.

Every preprocessed volume lives on one grid: the brain's bounding box in MNI
ICBM152 space (plus a margin), sampled with S voxels per axis. Defining that
grid in one place is what makes volumes from different scans, the GAN's
samples and the NIfTI affines agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import SimpleITK as sitk

__all__ = ["Template", "load_template", "output_grid", "grid_affine", "grid_spacing", "CEREBRA_LABELS"]

#: CerebrA label values kept in the bundle, (right, left) per structure.
CEREBRA_LABELS: dict[str, tuple[int, int]] = {
    "hippocampus": (48, 99),
    "amygdala": (19, 70),
    "lateral_ventricle": (41, 92),
    "inferior_lateral_ventricle": (5, 56),
}

#: Margin (mm) added around the template brain mask's bounding box.
GRID_MARGIN_MM = 4.0


@dataclass(frozen=True)
class Template:
    """Template images on the bundle's 1.5 mm MNI grid (SimpleITK, LPS world).

    Attributes:
        t1_head: T1 with skull, float32 in [0, 1].
        t1_brain: T1 with the brain mask applied, float32 in [0, 1].
        brain_mask: uint8 brain mask.
        gm, wm: grey/white-matter probability maps, float32 in [0, 1].
        labels: uint8 CerebrA subset (see ``CEREBRA_LABELS``).
    """

    t1_head: sitk.Image
    t1_brain: sitk.Image
    brain_mask: sitk.Image
    gm: sitk.Image
    wm: sitk.Image
    labels: sitk.Image


def _bundle_dir() -> Path:
    return Path(str(resources.files("brainaug") / "data" / "template"))


def _read_unit(name: str) -> sitk.Image:
    image = sitk.ReadImage(str(_bundle_dir() / name), sitk.sitkFloat32)
    return sitk.Cast(image / 255.0, sitk.sitkFloat32)


@lru_cache(maxsize=1)
def load_template() -> Template:
    """Load the bundle once per process (about 3 MB, a fraction of a second)."""
    mask = sitk.ReadImage(str(_bundle_dir() / "brain_mask.nii.gz"), sitk.sitkUInt8)
    head = _read_unit("t1_head.nii.gz")
    brain = sitk.Mask(head, mask)
    return Template(
        t1_head=head,
        t1_brain=brain,
        brain_mask=mask,
        gm=_read_unit("gm.nii.gz"),
        wm=_read_unit("wm.nii.gz"),
        labels=sitk.ReadImage(str(_bundle_dir() / "cerebra_subset.nii.gz"), sitk.sitkUInt8),
    )


@lru_cache(maxsize=8)
def _grid_geometry(size: int) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    mask = load_template().brain_mask
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    x0, y0, z0, nx, ny, nz = stats.GetBoundingBox(1)
    lo = np.array(mask.TransformIndexToPhysicalPoint((x0, y0, z0)))
    hi = np.array(mask.TransformIndexToPhysicalPoint((x0 + nx - 1, y0 + ny - 1, z0 + nz - 1)))
    lo_w, hi_w = np.minimum(lo, hi) - GRID_MARGIN_MM, np.maximum(lo, hi) + GRID_MARGIN_MM
    # Keep the template's axis directions (LPS world, RAS voxel order as in NIfTI).
    direction = np.array(mask.GetDirection()).reshape(3, 3)
    extent = hi_w - lo_w
    spacing = extent / size
    # Voxel centres sit half a voxel inside the box; the origin is the centre
    # of voxel (0, 0, 0), at the corner the direction cosines start from.
    signs = np.sign(np.diag(direction))
    start = np.where(signs > 0, lo_w, hi_w) + signs * spacing / 2.0
    return tuple(start.tolist()), tuple(spacing.tolist()), tuple(direction.ravel().tolist())


def output_grid(size: int) -> sitk.Image:
    """The S^3 reference image (zeros) that every scan is resampled onto."""
    if size < 8 or size & (size - 1):
        raise ValueError(f"image_size must be a power of two >= 8, got {size}")
    origin, spacing, direction = _grid_geometry(size)
    grid = sitk.Image([size] * 3, sitk.sitkFloat32)
    grid.SetOrigin(origin)
    grid.SetSpacing(spacing)
    grid.SetDirection(direction)
    return grid


def grid_affine(size: int) -> np.ndarray:
    """NIfTI (RAS) affine of ``output_grid(size)``, for nibabel writers."""
    grid = output_grid(size)
    direction = np.array(grid.GetDirection()).reshape(3, 3)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = lps_to_ras @ direction @ np.diag(grid.GetSpacing())
    affine[:3, 3] = lps_to_ras @ np.array(grid.GetOrigin())
    return affine


def grid_spacing(size: int) -> tuple[float, float, float]:
    """Voxel size (mm) of ``output_grid(size)`` along the array axes (x, y, z).

    The grid spans the template brain's bounding box, which is not a cube, so the
    voxels are not either (4.75 x 5.88 x 5.08 mm at 32^3). Every volume of
    ``results/dataset`` lies on this grid (the dataset rule checks each NIfTI
    affine against :func:`grid_affine`), so this is what turns voxels into mm for
    the classic augmentation.
    """
    affine = grid_affine(size)
    return tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))  # type: ignore[return-value]
