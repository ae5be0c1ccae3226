"""Diagnosis-dependent atrophy on the MNI template: the displacement fields.

Why a field and not a label edit: the synthetic subject is the template
*resampled* through one composite transform (scanner grid -> global affine ->
displacement), so atrophy has to be a smooth displacement that the resampler
can follow. Two unit fields (per unit of severity) are built once per process:

* medial temporal lobe (hippocampus + amygdala, one complex per hemisphere):
  a radial field around the complex's centroid, weighted by a Gaussian-smoothed
  mask. In the pull-back convention of ``sitk.Resample`` (output point ``p``
  reads the template at ``p + u(p)``), pointing *away* from the centroid makes
  the structure smaller in the subject.
* ventricles (lateral + inferior lateral): the gradient of the smoothed mask,
  i.e. a displacement along the surface normal pointing *into* the ventricle,
  which enlarges it. A radial field would not do for the C-shaped ventricles:
  scaling around a centroid that lies outside the structure moves the horns
  instead of dilating them.

A subject's atrophy field is ``severity * (mtl + ventricles)``; it is added to
the subject's random elastic field on the same grid.

The fields live on a 3 mm grid (every other template voxel): they are smooth
on a scale of several mm, and ``sitk.DisplacementFieldTransform`` interpolates
them linearly, which keeps resampling fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from brainaug.template import CEREBRA_LABELS, load_template

__all__ = [
    "AtrophyBasis",
    "FIELD_STEP",
    "atrophy_basis",
    "field_grid",
    "displacement_transform",
    "index_to_physical_gradient",
]

#: The displacement-field grid takes every FIELD_STEP-th template voxel (3 mm).
FIELD_STEP = 2


@dataclass(frozen=True)
class AtrophyBasis:
    """Unit atrophy fields on the field grid (LPS physical mm per unit severity).

    Attributes:
        origin, spacing, direction: geometry of the field grid (SimpleITK).
        mtl: ``(Z, Y, X, 3)`` float64, shrinks hippocampus and amygdala.
        ventricles: ``(Z, Y, X, 3)`` float64, enlarges the ventricles.
    """

    origin: tuple[float, ...]
    spacing: tuple[float, ...]
    direction: tuple[float, ...]
    mtl: np.ndarray
    ventricles: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(Z, Y, X)`` of the field grid."""
        return tuple(self.mtl.shape[:3])  # type: ignore[return-value]


def field_grid() -> sitk.Image:
    """The (empty) 3 mm reference image on which displacement fields are defined."""
    labels = load_template().labels
    size = [(n + FIELD_STEP - 1) // FIELD_STEP for n in labels.GetSize()]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetOrigin(labels.GetOrigin())
    grid.SetSpacing([s * FIELD_STEP for s in labels.GetSpacing()])
    grid.SetDirection(labels.GetDirection())
    return grid


def index_to_physical_gradient(
    grad_zyx: tuple[np.ndarray, np.ndarray, np.ndarray], image: sitk.Image
) -> np.ndarray:
    """Convert a numpy gradient (d/dk, d/dj, d/di) to physical (x, y, z) components.

    With ``p = origin + D @ diag(spacing) @ (i, j, k)``, the physical gradient is
    ``D @ diag(1/spacing) @ (d/di, d/dj, d/dk)``.

    Args:
        grad_zyx: three arrays of shape ``(Z, Y, X)`` as returned by ``np.gradient``.
        image: the SimpleITK image whose grid the arrays sample.

    Returns:
        ``(Z, Y, X, 3)`` float64 gradient in physical units per mm.
    """
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    d_index = np.stack([grad_zyx[2], grad_zyx[1], grad_zyx[0]], axis=-1)
    return d_index @ (direction @ np.diag(1.0 / spacing)).T


def _physical_offsets(image: sitk.Image, centre: np.ndarray) -> np.ndarray:
    """``p - centre`` for every voxel, ``(Z, Y, X, 3)`` float64."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    origin = np.array(image.GetOrigin())
    nx, ny, nz = image.GetSize()
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    idx = np.stack([i, j, k], axis=-1).astype(np.float64)
    return idx @ (direction @ np.diag(spacing)).T + (origin - centre)


@lru_cache(maxsize=4)
def atrophy_basis(
    mtl_strength: float = 0.16, ventricle_mm: float = 2.6, sigma_mm: float = 3.0
) -> AtrophyBasis:
    """Build (once per process) the unit atrophy fields.

    Args:
        mtl_strength: relative radial pull at severity 1 in the core of the
            hippocampus/amygdala complex (0.16: the core is read from 16% further
            out, a volume loss of roughly a third).
        ventricle_mm: largest normal displacement (mm) at severity 1 at the
            ventricle walls.
        sigma_mm: Gaussian smoothing of the structure masks; sets how far the
            deformation reaches into the neighbouring tissue.

    Returns:
        The fields on ``field_grid()``.
    """
    if not (0.0 <= mtl_strength < 0.5):
        raise ValueError(f"mtl_strength must be in [0, 0.5), got {mtl_strength}")
    if not (0.0 <= ventricle_mm <= 5.0):
        raise ValueError(f"ventricle_mm must be in [0, 5] mm, got {ventricle_mm}")
    if sigma_mm <= 0:
        raise ValueError(f"sigma_mm must be > 0, got {sigma_mm}")
    labels_img = load_template().labels
    labels = sitk.GetArrayViewFromImage(labels_img)
    spacing_zyx = np.array(labels_img.GetSpacing())[::-1]
    sigma_vox = sigma_mm / spacing_zyx
    sub = (slice(None, None, FIELD_STEP),) * 3
    grid = field_grid()
    shape = tuple(grid.GetSize()[::-1])

    # Medial temporal lobe: one complex per hemisphere (index 0 right, 1 left).
    mtl = np.zeros(shape + (3,), dtype=np.float64)
    for side in (0, 1):
        mask = np.isin(
            labels, [CEREBRA_LABELS["hippocampus"][side], CEREBRA_LABELS["amygdala"][side]]
        )
        idx = np.argwhere(mask).mean(axis=0)[::-1]  # (i, j, k)
        centre = np.array(labels_img.TransformContinuousIndexToPhysicalPoint(idx.tolist()))
        smooth = ndimage.gaussian_filter(mask.astype(np.float32), sigma_vox)[sub]
        # Plateau of 1 over the structure, smooth fall-off around it.
        weight = np.clip(2.0 * smooth / smooth.max(), 0.0, 1.0).astype(np.float64)
        mtl += mtl_strength * weight[..., None] * _physical_offsets(grid, centre)

    vent_values = [*CEREBRA_LABELS["lateral_ventricle"], *CEREBRA_LABELS["inferior_lateral_ventricle"]]
    vmask = np.isin(labels, vent_values).astype(np.float32)
    vsmooth = ndimage.gaussian_filter(vmask, sigma_vox)[sub].astype(np.float64)
    grad = index_to_physical_gradient(np.gradient(vsmooth), grid)
    norm = np.linalg.norm(grad, axis=-1).max()
    ventricles = ventricle_mm * grad / norm

    return AtrophyBasis(
        origin=grid.GetOrigin(),
        spacing=grid.GetSpacing(),
        direction=grid.GetDirection(),
        mtl=mtl,
        ventricles=ventricles,
    )


def displacement_transform(basis: AtrophyBasis, field: np.ndarray) -> sitk.DisplacementFieldTransform:
    """Wrap a ``(Z, Y, X, 3)`` physical displacement field (mm) as a SimpleITK transform.

    Args:
        basis: supplies the field grid geometry.
        field: displacement in LPS mm, same shape as ``basis.mtl``.

    Returns:
        A transform mapping ``p`` to ``p + u(p)`` (zero displacement outside the grid).
    """
    if field.shape != basis.mtl.shape:
        raise ValueError(f"field must have shape {basis.mtl.shape}, got {field.shape}")
    image = sitk.GetImageFromArray(np.ascontiguousarray(field, dtype=np.float64), isVector=True)
    image.SetOrigin(basis.origin)
    image.SetSpacing(basis.spacing)
    image.SetDirection(basis.direction)
    return sitk.DisplacementFieldTransform(image)
