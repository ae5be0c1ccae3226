"""The embedded synthetic cohort: MNI-template subjects with diagnosis-dependent atrophy.

Why: the workflow needs a default dataset that ships with the package (no
download, no data-use agreement) and still poses the real problem: classes
that differ in the structures dementia affects, overlap the way CN, MCI and AD
do, and arrive as heterogeneous scans that preprocessing must bring back into
template space.

Each subject is the MNI ICBM152 template (``brainaug.template``) resampled
through one composite transform, in this order from a scanner voxel back to the
template (``sitk.Resample`` pulls back):

1. the scanner grid: random orientation (never RAS), small oblique tilt,
   anisotropic voxels, field of view around the head with random margins;
2. a random global affine (head size and shape, rotation, shear);
3. a smooth displacement field = random elastic variation + ``severity`` x the
   atrophy fields of :mod:`brainaug.cohort.atrophy` (hippocampus/amygdala
   shrink, ventricles grow).

Before resampling, the template intensities get a grey/white contrast jitter
and mild cortical thinning (outer grey matter blended towards CSF,
severity-scaled); after it, a smooth multiplicative bias field, Rician noise and
int16 scaling. Skull on for a configurable share of subjects.

Severity is drawn per subject around a class mean with overlap (CN ~0.1,
MCI ~0.4, AD ~0.7, SD 0.15; older subjects slightly more), so one subject
of a class may look like the next class. Ground truth (severity, structure
volumes measured through the very field used, scanner geometry) is written to
``derivatives/brainaug-truth/truth.tsv``.

Determinism: cohort-level draws use ``default_rng([seed, 0])``, subject
anatomy ``default_rng([seed, 1, subject])``, each session's scanner
``default_rng([seed, 2, subject, session])``; files are gzipped with
``mtime=0``, so the same seed gives byte-identical files, whatever ``n_jobs``.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import permutations, product
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

import brainaug
from brainaug.cohort.atrophy import FIELD_STEP, atrophy_basis, displacement_transform
from brainaug.config import check_synthetic
from brainaug.settings import build_settings
from brainaug.template import CEREBRA_LABELS, _bundle_dir, load_template

__all__ = [
    "SyntheticCohortConfig",
    "SubjectParams",
    "SessionParams",
    "make_synthetic_cohort",
    "sample_subject",
    "sample_session",
    "render_session",
    "read_truth",
    "is_synthetic_dataset",
    "orientation_codes",
    "TRUTH_RELPATH",
    "STRUCTURES",
]

#: Where the ground truth lives inside the generated BIDS dataset.
TRUTH_RELPATH = Path("derivatives") / "brainaug-truth" / "truth.tsv"

#: Structures whose volumes (mm^3, both hemispheres) the truth table reports.
STRUCTURES: tuple[str, ...] = tuple(CEREBRA_LABELS)

_GENERATOR_TAG = "brainaug.cohort.synthetic"
_DEFAULT_CLASSES = ("CN", "MCI", "AD")
#: MMSE mean and SD for the usual class names; other names interpolate by class rank.
_MMSE = {"CN": (29.0, 1.0), "MCI": (27.0, 2.0), "AD": (22.0, 3.0)}
_SEVERITY_RANGE = (0.1, 0.7)  # class means of the first and last class
_PROGRESSION_PER_YEAR = (0.01, 0.06)  # severity increase per year, first and last class
_THINNING = 0.6  # share of the outer-cortex blend towards CSF at severity 1


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SyntheticCohortConfig:
    """Settings of the synthetic cohort (config section ``synthetic``).

    Attributes:
        n_per_class: subjects per class, an int or ``{class: int}``.
        classes: diagnosis names, in order of increasing severity.
        seed: master seed; same seed, byte-identical dataset.
        sessions_per_subject: scans per subject (>1 adds ``ses-*`` folders,
            a year or so apart, with progressing atrophy).
        skull_probability: share of sessions written with the skull on.
        severity_sd: within-class SD of the atrophy severity (sets the overlap).
        max_voxels: cap on voxels per scan (larger grids get coarser voxels).
        scale: >1 coarsens the working template grid and the scanner voxels by
            this factor (tests use 2 to run in seconds); 1 for real use.
    """

    n_per_class: int | dict[str, int]
    classes: tuple[str, ...]
    seed: int
    sessions_per_subject: int
    skull_probability: float
    severity_sd: float
    max_voxels: int
    scale: float

    def __post_init__(self) -> None:
        if not 1.0 <= self.scale <= 4.0:
            raise ValueError(f"synthetic.scale must be in [1, 4], got {self.scale}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, *, scale: float = 1.0) -> SyntheticCohortConfig:
        """Build from the ``synthetic`` config section plus ``classes`` (``data.classes``).

        Defaults and bounds come from the schema; ``scale`` is not configuration
        (tests coarsen the cohort with it).

        Raises:
            TypeError: a value of the wrong type (the message names the key).
            ValueError: unknown key or bad value (the message names the key).
        """
        return build_settings(
            cls, "synthetic", section, borrowed={"classes": "data.classes"}, check=check_synthetic, scale=float(scale)
        )

    def counts(self) -> dict[str, int]:
        """Subjects per class, in class order."""
        if isinstance(self.n_per_class, Mapping):
            return {c: self.n_per_class[c] for c in self.classes}
        return {c: self.n_per_class for c in self.classes}


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class SubjectParams:
    """Anatomy and covariates of one subject (fixed across sessions).

    Attributes:
        participant_id: ``sub-XXX``.
        diagnosis: class name; ``class_rank`` its position in [0, 1] along the classes.
        age, sex, mmse: baseline covariates.
        severity: baseline atrophy severity in [0, 1].
        progression: severity increase per year (sessions after the first).
        affine: forward 3x3 linear part (template -> subject) about ``centre``.
        elastic: control-point displacements (mm), shape ``(3, 6, 7, 6)``.
        gm_gain, wm_gain: relative contrast change of grey/white matter.
    """

    participant_id: str
    diagnosis: str
    class_rank: float
    age: float
    sex: str
    mmse: int
    severity: float
    progression: float
    affine: np.ndarray = field(repr=False)
    elastic: np.ndarray = field(repr=False)
    gm_gain: float = 0.0
    wm_gain: float = 0.0


@dataclass(frozen=True)
class SessionParams:
    """Scanner and visit of one session.

    Attributes:
        session_id: ``ses-XX`` or ``""`` for single-session cohorts.
        years: time since baseline; ``severity``, ``age``, ``mmse`` at this visit.
        skull: whether the head (True) or the brain only is written.
        orientation: nibabel axis code of the voxel axes (e.g. ``"LPS"``).
        oblique: 3x3 rotation (LPS) tilting the scanner grid.
        spacing: voxel size (mm) along the voxel axes (third = slice axis).
        margins: ``(lo0, lo1, lo2, hi0, hi1, hi2)`` mm around the head box.
        bias: 9 coefficients of the log-bias polynomial (x, y, z, x2, y2, z2, xy, xz, yz).
        bias_range: largest |log bias| over the field of view.
        noise_sd: Rician noise SD relative to the template's [0, 1] intensities.
        intensity_scale: multiplier to int16.
    """

    session_id: str
    years: float
    severity: float
    age: float
    mmse: int
    skull: bool
    orientation: str
    oblique: np.ndarray = field(repr=False)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    margins: tuple[float, ...] = (0.0,) * 6
    bias: np.ndarray = field(default_factory=lambda: np.zeros(9), repr=False)
    bias_range: float = 0.0
    noise_sd: float = 0.0
    intensity_scale: float = 1000.0


@lru_cache(maxsize=1)
def orientation_codes() -> tuple[str, ...]:
    """All 48 voxel-axis orientation codes, RAS first."""
    letters = (("R", "L"), ("A", "P"), ("S", "I"))
    codes = []
    for perm in permutations(range(3)):
        for signs in product((0, 1), repeat=3):
            codes.append("".join(letters[perm[a]][signs[a]] for a in range(3)))
    return tuple(sorted(codes, key=lambda c: c != "RAS"))


def _orientation_matrix(code: str) -> np.ndarray:
    """LPS direction matrix whose columns point along the voxel axes of ``code``."""
    ras = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    mat = np.zeros((3, 3))
    for col, letter in enumerate(code):
        axis, sign = ras[letter]
        mat[axis, col] = sign
    return np.diag([-1.0, -1.0, 1.0]) @ mat


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def _truncated_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float) -> float:
    for _ in range(100):
        value = rng.normal(mean, sd)
        if lo <= value <= hi:
            return float(value)
    return float(np.clip(mean, lo, hi))


def sample_subject(
    rng: np.random.Generator, participant_id: str, diagnosis: str, class_rank: float, severity_sd: float = 0.15
) -> SubjectParams:
    """Draw one subject's covariates, severity and anatomical variation.

    Args:
        rng: the subject's generator (``default_rng([seed, 1, index])``).
        participant_id: ``sub-XXX``.
        diagnosis: class name.
        class_rank: position of the class, 0 (first, mildest) to 1 (last).
        severity_sd: within-class SD of the severity.
    """
    lo, hi = _SEVERITY_RANGE
    age = float(np.clip(rng.normal(72.0 + 3.0 * class_rank, 7.0), 55.0, 90.0))
    sex = "F" if rng.random() < 0.5 else "M"
    mean_sev = lo + (hi - lo) * class_rank + 0.004 * (age - 72.0)
    severity = _truncated_normal(rng, mean_sev, severity_sd, 0.0, 1.0)
    mmse_mean, mmse_sd = _MMSE.get(
        diagnosis, (29.0 - 7.0 * class_rank, 1.0 + 2.0 * class_rank)
    )
    mmse = int(np.clip(round(rng.normal(mmse_mean, mmse_sd)), 0, 30))
    plo, phi = _PROGRESSION_PER_YEAR
    progression = plo + (phi - plo) * class_rank

    # Global affine: head size (+-6%), shape (+-3% per axis), rotation (+-10 deg), shear.
    scales = rng.uniform(0.94, 1.06) * (1.0 + rng.uniform(-0.03, 0.03, size=3))
    shear = np.eye(3)
    shear[np.triu_indices(3, 1)] = rng.uniform(-0.03, 0.03, size=3)
    rot = np.eye(3)
    for axis, angle in enumerate(np.deg2rad(rng.uniform(-10.0, 10.0, size=3))):
        unit = np.zeros(3)
        unit[axis] = 1.0
        rot = _rotation(unit, angle) @ rot
    affine = rot @ shear @ np.diag(scales)
    amplitude = rng.uniform(1.5, 3.0)
    elastic = rng.normal(0.0, amplitude, size=(3, 6, 7, 6))
    return SubjectParams(
        participant_id=participant_id,
        diagnosis=diagnosis,
        class_rank=class_rank,
        age=round(age, 1),
        sex=sex,
        mmse=mmse,
        severity=severity,
        progression=progression,
        affine=affine,
        elastic=elastic,
        gm_gain=float(rng.uniform(-0.08, 0.08)),
        wm_gain=float(rng.uniform(-0.08, 0.08)),
    )


def sample_session(
    rng: np.random.Generator,
    subject: SubjectParams,
    session_id: str,
    years: float,
    skull_probability: float = 0.5,
) -> SessionParams:
    """Draw one visit's scanner: orientation, voxels, field of view, bias, noise.

    Args:
        rng: the session's generator (``default_rng([seed, 2, subject, session])``).
        subject: the subject scanned.
        session_id: ``ses-XX`` or ``""``.
        years: time since baseline.
        skull_probability: chance that the head (not the brain only) is written.
    """
    severity = float(min(1.0, subject.severity + subject.progression * years))
    mmse = int(np.clip(round(subject.mmse - 10.0 * (severity - subject.severity)), 0, 30))
    codes = orientation_codes()[1:]  # never RAS: preprocessing must reorient
    orientation = codes[int(rng.integers(len(codes)))]
    oblique = _rotation(rng.normal(size=3), np.deg2rad(rng.uniform(-8.0, 8.0)))
    in_plane = float(rng.uniform(1.0, 1.5))
    slice_mm = float(rng.uniform(1.2, 3.0))
    return SessionParams(
        session_id=session_id,
        years=round(years, 2),
        severity=severity,
        age=round(subject.age + years, 1),
        mmse=mmse,
        skull=bool(rng.random() < skull_probability),
        orientation=orientation,
        oblique=oblique,
        spacing=(in_plane, in_plane, slice_mm),
        margins=tuple(float(m) for m in rng.uniform(-10.0, 15.0, size=6)),
        bias=np.concatenate([rng.normal(0, 1.0, size=3), rng.normal(0, 0.6, size=6)]),
        bias_range=float(rng.uniform(0.15, 0.3)),
        noise_sd=float(rng.uniform(0.01, 0.03)),
        intensity_scale=float(rng.uniform(600.0, 1400.0)),
    )


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
    thin = (_THINNING * sev) * ws.band
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


def _write_nifti_gz(image: nib.Nifti1Image, path: Path) -> None:
    """gzip without a timestamp, so equal images give equal bytes."""
    path.write_bytes(gzip.compress(image.to_bytes(), compresslevel=1, mtime=0))


# --------------------------------------------------------------------------- cohort


def _session_job(args: tuple) -> dict:
    """Sample and render one (subject, session); write the scan; return its truth row."""
    subject, seed, index, ses_index, session_id, years, cfg, root = args
    rng = np.random.default_rng([seed, 2, index, ses_index])
    session = sample_session(rng, subject, session_id, years, cfg.skull_probability)
    image, truth = render_session(subject, session, rng, scale=cfg.scale, max_voxels=cfg.max_voxels)
    stem = subject.participant_id + (f"_{session_id}" if session_id else "")
    anat = Path(root) / subject.participant_id / (session_id or "") / "anat"
    anat.mkdir(parents=True, exist_ok=True)
    _write_nifti_gz(image, anat / f"{stem}_T1w.nii.gz")
    zooms = image.header.get_zooms()
    return {
        "participant_id": subject.participant_id,
        "session_id": session_id,
        "diagnosis": subject.diagnosis,
        "years": session.years,
        "age": session.age,
        "mmse": session.mmse,
        "severity": round(session.severity, 4),
        **truth,
        "skull": int(session.skull),
        "orientation": "".join(nib.aff2axcodes(image.affine)),
        "shape": "x".join(str(n) for n in image.shape),
        "voxel_mm": "x".join(f"{z:.3f}" for z in zooms),
    }


def is_synthetic_dataset(path: Path) -> bool:
    """True if ``path`` holds a dataset written by :func:`make_synthetic_cohort`."""
    try:
        description = json.loads((Path(path) / "dataset_description.json").read_text())
        generated = description.get("GeneratedBy", [])
        return any(
            g.get("Name") == "brainaug" and g.get("Description", "").startswith(_GENERATOR_TAG) for g in generated
        )
    except (OSError, ValueError, AttributeError):
        return False


def _check_outdir(outdir: Path) -> None:
    if outdir.exists():
        if not outdir.is_dir():
            raise ValueError(f"outdir {outdir} exists and is not a directory")
        if any(outdir.iterdir()) and not is_synthetic_dataset(outdir):
            raise ValueError(
                f"outdir {outdir} is not empty and not a brainaug synthetic dataset; refusing to overwrite it"
            )


def _tsv(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    def fmt(value: object) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            return "n/a"
        return str(value)

    lines = ["\t".join(columns)] + ["\t".join(fmt(row[c]) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def _write_metadata(
    root: Path, cfg: SyntheticCohortConfig, subjects: Sequence[SubjectParams], truth: pd.DataFrame
) -> None:
    bundle = _bundle_dir()
    _write_json(
        root / "dataset_description.json",
        {
            "Name": "brainaug synthetic dementia cohort",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "License": "MNI ICBM152 template notice (see LICENSE); CerebrA (Manera et al. 2020)",
            "Authors": ["brainaug"],
            "GeneratedBy": [
                {
                    "Name": "brainaug",
                    "Version": brainaug.__version__,
                    "Description": (
                        f"{_GENERATOR_TAG}: MNI ICBM152 2009 template warped per subject "
                        "(elastic + affine variation, diagnosis-dependent atrophy), bias, noise, scanner geometry; "
                        f"seed={cfg.seed}, classes={list(cfg.classes)}, n_per_class={cfg.counts()}, "
                        f"sessions_per_subject={cfg.sessions_per_subject}, scale={cfg.scale}"
                    ),
                }
            ],
            "HowToAcknowledge": "Cite the MNI ICBM152 and CerebrA articles listed in README.",
            "ReferencesAndLinks": [
                "https://doi.org/10.1016/j.neuroimage.2010.07.033",
                "https://doi.org/10.1016/S1053-8119(09)70884-5",
                "https://doi.org/10.1038/s41597-020-00564-0",
            ],
        },
    )
    shutil.copyfile(bundle / "COPYING-MNI.txt", root / "LICENSE")
    (root / "README").write_text(
        "Synthetic T1w cohort generated by brainaug (brainaug.cohort.synthetic). Not real subjects.\n"
        "Ground truth (severity, structure volumes, scanner geometry): "
        f"{TRUTH_RELPATH.as_posix()}\n\n" + (bundle / "CITATION.md").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    participants = [
        {"participant_id": s.participant_id, "diagnosis": s.diagnosis, "age": s.age, "sex": s.sex, "mmse": s.mmse}
        for s in subjects
    ]
    (root / "participants.tsv").write_text(_tsv(participants, ["participant_id", "diagnosis", "age", "sex", "mmse"]), encoding="utf-8")
    _write_json(
        root / "participants.json",
        {
            "diagnosis": {
                "Description": "Clinical group (synthetic): sets the mean atrophy severity",
                "Levels": {c: f"class {i} of {len(cfg.classes)}" for i, c in enumerate(cfg.classes)},
            },
            "age": {"Description": "Age at the first session", "Units": "year"},
            "sex": {"Description": "Sex", "Levels": {"F": "female", "M": "male"}},
            "mmse": {"Description": "Mini-Mental State Examination at the first session (0-30)"},
        },
    )
    if cfg.sessions_per_subject > 1:
        for sub in subjects:
            rows = truth[truth["participant_id"] == sub.participant_id].to_dict("records")
            (root / sub.participant_id / f"{sub.participant_id}_sessions.tsv").write_text(
                _tsv(rows, ["session_id", "diagnosis", "age", "mmse"]), encoding="utf-8"
            )
    derivative = root / TRUTH_RELPATH.parent
    derivative.mkdir(parents=True, exist_ok=True)
    _write_json(
        derivative / "dataset_description.json",
        {
            "Name": "brainaug synthetic cohort ground truth",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "brainaug", "Version": brainaug.__version__}],
        },
    )
    (root / TRUTH_RELPATH).write_text(_tsv(truth.to_dict("records"), list(truth.columns)), encoding="utf-8")


def make_synthetic_cohort(
    outdir: str | os.PathLike,
    n_per_class: int | Mapping[str, int] = 24,
    classes: Sequence[str] = _DEFAULT_CLASSES,
    seed: int = 0,
    sessions_per_subject: int = 1,
    skull_probability: float = 0.5,
    severity_sd: float = 0.15,
    max_voxels: int = 2_000_000,
    scale: float = 1.0,
    n_jobs: int = 1,
) -> Path:
    """Write the synthetic BIDS dataset to ``outdir`` (atomically) and return its path.

    Layout: ``dataset_description.json``, ``README``, ``LICENSE``,
    ``participants.tsv`` (participant_id, diagnosis, age, sex, mmse),
    ``participants.json``, ``sub-XXX/[ses-XX/]anat/sub-XXX[_ses-XX]_T1w.nii.gz``
    (int16), ``sub-XXX/sub-XXX_sessions.tsv`` when there are several sessions,
    and the ground truth in ``derivatives/brainaug-truth/truth.tsv``.

    Args:
        outdir: target folder; may be missing, empty, or a previous dataset
            from this function (replaced); anything else is refused.
        n_per_class: subjects per class (int, or ``{class: int}``).
        classes: diagnoses in order of increasing severity.
        seed: master seed (same seed, byte-identical files).
        sessions_per_subject: scans per subject.
        skull_probability: share of scans with the skull on.
        severity_sd: within-class SD of the atrophy severity.
        max_voxels: cap on voxels per scan.
        scale: coarsening factor for quick tests (1 = full resolution).
        n_jobs: worker processes (results do not depend on it).

    Returns:
        ``outdir`` as a ``Path``.
    """
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an integer >= 1, got {n_jobs!r}")
    cfg = SyntheticCohortConfig.from_config(
        {
            "n_per_class": dict(n_per_class) if isinstance(n_per_class, Mapping) else n_per_class,
            "classes": list(classes),
            "seed": seed,
            "sessions_per_subject": sessions_per_subject,
            "skull_probability": skull_probability,
            "severity_sd": severity_sd,
            "max_voxels": max_voxels,
        },
        scale=scale,
    )
    outdir = Path(outdir)
    _check_outdir(outdir)

    # Cohort level: shuffle class assignments so that subject numbers do not reveal classes.
    counts = cfg.counts()
    diagnoses = [c for c in cfg.classes for _ in range(counts[c])]
    order = np.random.default_rng([seed, 0]).permutation(len(diagnoses))
    diagnoses = [diagnoses[i] for i in order]
    width = max(3, len(str(len(diagnoses))))
    n_classes = len(cfg.classes)
    subjects = [
        sample_subject(
            np.random.default_rng([seed, 1, index]),
            f"sub-{index + 1:0{width}d}",
            diagnosis,
            cfg.classes.index(diagnosis) / (n_classes - 1),
            cfg.severity_sd,
        )
        for index, diagnosis in enumerate(diagnoses)
    ]

    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.tmp-", dir=outdir.parent))
    try:
        jobs = []
        for index, subject in enumerate(subjects):
            visit_rng = np.random.default_rng([seed, 3, index])
            years = 0.0
            for ses in range(cfg.sessions_per_subject):
                if ses:
                    years += float(visit_rng.uniform(0.8, 1.5))
                session_id = f"ses-{ses + 1:02d}" if cfg.sessions_per_subject > 1 else ""
                jobs.append((subject, seed, index, ses, session_id, years, cfg, str(tmp)))
        if n_jobs == 1:
            rows = [_session_job(job) for job in jobs]
        else:
            with ProcessPoolExecutor(max_workers=n_jobs) as pool:
                rows = list(pool.map(_session_job, jobs, chunksize=1))
        truth = pd.DataFrame(rows)
        _write_metadata(tmp, cfg, subjects, truth)
        os.chmod(tmp, 0o755)
        if outdir.exists():
            _check_outdir(outdir)  # may have changed while we worked
            old = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old-", dir=outdir.parent))
            os.replace(outdir, old / "dataset")
            os.replace(tmp, outdir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return outdir


def read_truth(bids_dir: str | os.PathLike) -> pd.DataFrame:
    """Read the ground-truth table of a synthetic dataset (one row per scan).

    Columns: participant_id, session_id, diagnosis, years, age, mmse, severity,
    ``<structure>_mm3`` for each of ``STRUCTURES``, icv_mm3, skull, orientation,
    shape, voxel_mm.
    """
    path = Path(bids_dir) / TRUTH_RELPATH
    if not path.is_file():
        raise ValueError(f"{bids_dir} has no ground truth at {TRUTH_RELPATH}; is it a brainaug synthetic dataset?")
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False, dtype={"session_id": str})
