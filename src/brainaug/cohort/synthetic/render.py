"""Rendering: one scan (and its ground-truth volumes) from subject and session parameters.

Why a module of its own: this is the deterministic half of the generator
(the template workspace, elastic field, scanner grid, bias field); the only
randomness left is the noise, drawn from the session's generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import product

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from brainaug.cohort.atrophy import FIELD_STEP, atrophy_basis, displacement_transform
from brainaug.cohort.synthetic.params import SessionParams, SubjectParams, _orientation_matrix
from brainaug.template import CEREBRA_LABELS, load_template

__all__ = ["render_session", "STRUCTURES"]

#: Structures whose volumes (mm^3, both hemispheres) the truth table reports.
STRUCTURES: tuple[str, ...] = tuple(CEREBRA_LABELS)

_THINNING = 0.6  # share of the outer-cortex blend towards CSF at severity 1


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Workspace:
    """Per-process, per-scale cache: template intensities and helper maps."""

    grid: sitk.Image  # working grid (template at 1.5*scale mm)
    head: np.ndarray  # (Z, Y, X) float32 in [0, 1]
    brain: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    band: np.ndarray  # outer cortex weight in [0, 1]
    csf: float  # T1 intensity of CSF
    head_box: np.ndarray  # (8, 3) LPS corners of the head's bounding box
    brain_box: np.ndarray
    centre: np.ndarray  # brain centre (LPS), the affine's fixed point
    label_masks: np.ndarray  # (n_structures, z, y, x) float32 masks on a 1.5 mm crop
    crop_field_coords: np.ndarray  # (3, z, y, x) crop voxels in field-grid index units (k, j, i)
    index_per_mm: np.ndarray  # 3x3: physical displacement (x, y, z) -> template index shift (k, j, i)
    label_voxel_mm3: float
    brain_mm3: float


def _resample_to(image: sitk.Image, reference: sitk.Image, interp: int = sitk.sitkLinear) -> sitk.Image:
    return sitk.Resample(image, reference, sitk.Transform(), interp, 0.0, image.GetPixelID())


def _box_corners(mask: np.ndarray, image: sitk.Image) -> np.ndarray:
    zyx = np.argwhere(mask)
    lo, hi = zyx.min(axis=0)[::-1], zyx.max(axis=0)[::-1]
    corners = [
        image.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])
        for corner in product(*zip(lo - 0.5, hi + 0.5))
    ]
    return np.array(corners)


@lru_cache(maxsize=2)
def _workspace(scale: float) -> _Workspace:
    tpl = load_template()
    if scale == 1.0:
        grid = tpl.t1_head
        images = [tpl.t1_head, tpl.brain_mask, tpl.gm, tpl.wm]
    else:
        src = tpl.t1_head
        size = [int(math.ceil(n / scale)) for n in src.GetSize()]
        grid = sitk.Image(size, sitk.sitkFloat32)
        grid.SetDirection(src.GetDirection())
        grid.SetSpacing([s * scale for s in src.GetSpacing()])
        # Keep the physical box: the first voxel centre moves by half the spacing change.
        shift = np.array(src.GetDirection()).reshape(3, 3) @ (np.array(grid.GetSpacing()) - src.GetSpacing()) / 2
        grid.SetOrigin(tuple(np.array(src.GetOrigin()) + shift))
        images = [
            _resample_to(tpl.t1_head, grid),
            _resample_to(sitk.Cast(tpl.brain_mask, sitk.sitkFloat32), grid),
            _resample_to(tpl.gm, grid),
            _resample_to(tpl.wm, grid),
        ]
    head, mask, gm, wm = (sitk.GetArrayFromImage(im).astype(np.float32) for im in images)
    mask = mask > 0.5
    brain = head * mask
    labels = sitk.GetArrayViewFromImage(tpl.labels)
    vent = np.isin(labels, CEREBRA_LABELS["lateral_ventricle"])
    csf = float(np.median(sitk.GetArrayViewFromImage(tpl.t1_head)[vent]))
    # Outer cortex: grey matter next to CSF-like voxels (not GM, not WM) inside the dilated brain.
    near_brain = ndimage.binary_dilation(mask, iterations=2)
    csf_like = np.clip(1.0 - gm - wm, 0.0, 1.0) * near_brain
    band = gm * ndimage.gaussian_filter(csf_like, 1.5 / scale)
    band = (band / band.max()).astype(np.float32)

    # Binary structure masks on a 1.5 mm crop around the structures (+9 mm), read
    # through each subject's displacement (linear: partial volumes) to measure volumes.
    zyx = np.argwhere(labels > 0)
    lo = np.maximum(zyx.min(axis=0) - 6, 0)
    hi = np.minimum(zyx.max(axis=0) + 7, labels.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    label_masks = np.stack([np.isin(labels[crop], v).astype(np.float32) for v in CEREBRA_LABELS.values()])
    kji = np.indices(label_masks.shape[1:], dtype=np.float32) + lo.astype(np.float32)[:, None, None, None]
    direction = np.array(tpl.labels.GetDirection()).reshape(3, 3)
    index_per_mm = (np.diag(1.0 / np.array(tpl.labels.GetSpacing())) @ direction.T)[::-1]  # rows k, j, i
    full_mask = sitk.GetArrayViewFromImage(tpl.brain_mask) > 0
    brain_box = _box_corners(full_mask, tpl.brain_mask)
    return _Workspace(
        grid=grid,
        head=head,
        brain=brain,
        gm=gm,
        wm=wm,
        band=band,
        csf=csf,
        head_box=_box_corners(sitk.GetArrayViewFromImage(tpl.t1_head) > 0.1, tpl.t1_head),
        brain_box=brain_box,
        centre=brain_box.mean(axis=0),
        label_masks=label_masks,
        crop_field_coords=kji / FIELD_STEP,
        index_per_mm=index_per_mm,
        label_voxel_mm3=float(np.prod(tpl.labels.GetSpacing())),
        brain_mm3=float(full_mask.sum() * np.prod(tpl.brain_mask.GetSpacing())),
    )


def _elastic_field(control: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Smoothly interpolate control-point displacements ``(3, a, b, c)`` to ``(Z, Y, X, 3)``.

    Separable Gaussian weights normalised to sum to one per output voxel (a
    partition of unity): three small matrix products instead of a 3D spline,
    so the field costs milliseconds.
    """
    weights = []
    for n, m in zip(shape, control.shape[1:]):
        centres = np.linspace(0.0, n - 1.0, m)
        width = 0.7 * (n - 1.0) / (m - 1.0)
        w = np.exp(-0.5 * ((np.arange(n)[:, None] - centres[None, :]) / width) ** 2)
        weights.append(w / w.sum(axis=1, keepdims=True))
    return np.einsum("za,yb,xc,dabc->zyxd", *weights, control, optimize=True)


def _scanner_grid(
    session: SessionParams, subject: SubjectParams, ws: _Workspace, scale: float, max_voxels: int
) -> sitk.Image:
    """The acquisition grid: oriented, tilted, anisotropic, covering the head."""
    direction = session.oblique @ _orientation_matrix(session.orientation)

    def to_scanner(points: np.ndarray) -> np.ndarray:
        subject_pts = (points - ws.centre) @ subject.affine.T + ws.centre
        return subject_pts @ direction  # coordinates along the voxel axes

    brain = to_scanner(ws.brain_box)
    blo, bhi = brain.min(axis=0) - 5.0, brain.max(axis=0) + 5.0
    margins = np.array(session.margins)
    if session.skull:
        head = to_scanner(ws.head_box)
        lo = np.minimum(head.min(axis=0) - margins[:3], blo)
        hi = np.maximum(head.max(axis=0) + margins[3:], bhi)
    else:
        lo = blo - np.abs(margins[:3])
        hi = bhi + np.abs(margins[3:])
    spacing = np.array(session.spacing) * scale
    size = np.ceil((hi - lo) / spacing)
    cap = max_voxels / scale**3
    if size.prod() > cap:
        spacing = spacing * (size.prod() / cap) ** (1.0 / 3.0)
        size = np.ceil((hi - lo) / spacing)
    grid = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    grid.SetSpacing(spacing.tolist())
    grid.SetDirection(direction.ravel().tolist())
    grid.SetOrigin((direction @ (lo + spacing / 2.0)).tolist())
    return grid


def _bias(session: SessionParams, shape: tuple[int, int, int]) -> np.ndarray:
    """Multiplicative smooth bias ``exp(poly2)`` on the scanner grid, array order (Z, Y, X)."""
    k, j, i = (np.linspace(-1.0, 1.0, n).astype(np.float32) for n in shape)
    x, y, z = i[None, None, :], j[None, :, None], k[:, None, None]
    c = session.bias.astype(np.float32)
    log_bias = (
        c[0] * x + c[1] * y + c[2] * z + c[3] * x * x + c[4] * y * y + c[5] * z * z
        + c[6] * x * y + c[7] * x * z + c[8] * y * z
    )
    log_bias = log_bias - log_bias.mean()
    peak = float(np.abs(log_bias).max())
    if peak > 0:
        log_bias *= session.bias_range / peak
    return np.exp(log_bias)


def render_session(
    subject: SubjectParams,
    session: SessionParams,
    rng: np.random.Generator,
    scale: float = 1.0,
    max_voxels: int = 2_000_000,
) -> tuple[nib.Nifti1Image, dict[str, float]]:
    """Deterministic twin of the samplers: build one scan from its parameters.

    Args:
        subject, session: parameters from :func:`sample_subject` / :func:`sample_session`.
        rng: draws the noise (the only randomness left).
        scale: working-grid coarsening (1 for real use).
        max_voxels: cap on the scan's voxel count (at scale 1).

    Returns:
        The int16 NIfTI image (RAS+ affine of the scanner grid, qform/sform
        code 1) and the ground-truth volumes (mm^3) per structure plus ``icv_mm3``.
    """
    ws = _workspace(float(scale))
    basis = atrophy_basis()
    sev = session.severity

    # 1. Template-space intensities: contrast jitter, cortical thinning.
    base = ws.head if session.skull else ws.brain
    intensity = base * (1.0 + subject.gm_gain * ws.gm + subject.wm_gain * ws.wm)
    # At most all the way to CSF: an exaggerated-atrophy control reaches severities above 1.
    thin = min(_THINNING * sev, 1.0) * ws.band
    intensity = intensity + thin * (ws.csf - intensity)
    moving = sitk.GetImageFromArray(intensity.astype(np.float32))
    moving.CopyInformation(ws.grid)

    # 2. Composite pull-back: scanner point -> inverse global affine -> displacement.
    disp = _elastic_field(subject.elastic, basis.shape) + sev * (basis.mtl + basis.ventricles)
    field_tx = displacement_transform(basis, disp)
    affine_tx = sitk.AffineTransform(3)
    affine_tx.SetMatrix(np.linalg.inv(subject.affine).ravel().tolist())
    affine_tx.SetCenter(ws.centre.tolist())
    composite = sitk.CompositeTransform([field_tx, affine_tx])  # last added is applied first

    grid = _scanner_grid(session, subject, ws, scale, max_voxels)
    scan = sitk.Resample(moving, grid, composite, sitk.sitkLinear, 0.0, sitk.sitkFloat32)

    # 3. Scanner physics: bias, Rician noise, int16 scaling.
    arr = sitk.GetArrayFromImage(scan)
    arr *= _bias(session, arr.shape)
    noise = rng.standard_normal((2,) + arr.shape, dtype=np.float32) * np.float32(session.noise_sd)
    arr = np.sqrt((arr + noise[0]) ** 2 + noise[1] ** 2)
    data = np.clip(np.round(arr * session.intensity_scale), 0, 32767).astype(np.int16)

    # 4. Ground truth: structure volumes through the displacement (1.5 mm partial volumes),
    #    times the affine's volume change.
    u = np.stack(
        [ndimage.map_coordinates(disp[..., c], ws.crop_field_coords, order=1, mode="nearest") for c in range(3)]
    )  # (3, z, y, x) physical mm at the crop voxels
    shift = np.tensordot(ws.index_per_mm, u, axes=1)  # template index shift (k, j, i)
    local = np.indices(ws.label_masks.shape[1:], dtype=np.float64) + shift
    sums = [
        float(ndimage.map_coordinates(mask, local, order=1, mode="constant", cval=0.0).sum(dtype=np.float64))
        for mask in ws.label_masks
    ]
    voxel_mm3 = ws.label_voxel_mm3
    det = float(np.linalg.det(subject.affine))
    truth = {f"{name}_mm3": round(float(s) * voxel_mm3 * det, 1) for name, s in zip(STRUCTURES, sums)}
    truth["icv_mm3"] = round(ws.brain_mm3 * det, 1)

    # sitk arrays are (k, j, i); NIfTI wants (i, j, k) and a RAS affine.
    direction = np.array(grid.GetDirection()).reshape(3, 3)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = lps_to_ras @ direction @ np.diag(grid.GetSpacing())
    affine[:3, 3] = lps_to_ras @ np.array(grid.GetOrigin())
    image = nib.Nifti1Image(data.transpose(2, 1, 0), affine)
    image.header.set_data_dtype(np.int16)
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    image.header["descrip"] = b"brainaug synthetic T1w"
    return image, truth
