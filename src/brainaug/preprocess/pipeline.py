"""Preprocess one T1 scan into an S^3 volume in MNI template space, scaled to [-1, 1].

Steps (stage costs in benchmarks/README.md, "Preprocessing speed"): load -> squeeze -> canonical orientation ->
downsample to a working resolution -> affine registration to the template (Mattes MI,
multi-resolution, similarity then affine, on the head or, for skull-stripped input, the brain)
-> N4 bias correction fitted inside the template brain mask pulled back through that
registration -> the affine refined on the corrected scan with the metric sampling the
template brain mask only -> brain mask (template mask in template space, AND the scan's
own foreground when it is already skull-stripped) -> anti-aliased resampling onto
``output_grid(S)`` (which is the crop to the brain's bounding box) -> robust intensity
scaling, background exactly -1. Why this order: benchmarks/README.md, "Registration
against ANTs" (an N4 fitted on the whole head lets scalp and fat pull the field; skull and
neck pull a whole-head affine).

Why a working resolution: the output grid is 2.4-5 mm per voxel, so carrying a 1 mm,
11-million-voxel scan through N4 and registration only costs time. The scan is
smoothed and resampled once to ~0.75 x the output spacing, which keeps a 1 mm
256x256x176 scan well under the 15 s single-thread budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from brainaug.io.atomic import atomic_output
from brainaug.io.images import load_image
from brainaug.preprocess.bias import n4_correct
from brainaug.preprocess.register import RegistrationResult, refine_on_brain, register_to_template, resample_like
from brainaug.preprocess.settings import PreprocessSettings
from brainaug.template import grid_affine, load_template, output_grid

__all__ = [
    "PreprocessSettings",
    "PreprocessResult",
    "preprocess_scan",
    "preprocess_file",
    "detect_skull_stripped",
    "template_on_grid",
    "template_correlation",
    "finish_on_grid",
    "write_nifti",
]

@dataclass
class PreprocessResult:
    """What :func:`preprocess_scan` returns.

    Attributes:
        volume: float32 array (S, S, S) in [-1, 1], RAS voxel order, matching ``grid_affine(S)``.
        image: the same volume as a SimpleITK image on ``output_grid(S)``.
        mask: bool array (S, S, S), the brain mask used (same order as ``volume``).
        transform: template -> scan affine (what ``sitk.Resample`` uses).
        qc: ``correlation`` (:func:`template_correlation`), ``mattes_mi`` (of the last
            registration stage: with ``registration_refine_on_brain``, inside the template
            brain mask), ``skull_stripped_input``, ``n4_applied``, ``seconds`` and per-stage
            timings ``t_<stage>``.
    """

    volume: np.ndarray
    image: sitk.Image
    mask: np.ndarray
    transform: sitk.Transform
    qc: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _sitk_threads(n: int) -> Iterator[None]:
    old = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(n))
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(old)


def _load(path: str | os.PathLike[str], assume_orientation: str | None = None) -> sitk.Image:
    """Read a scan with the project's validating loader (raises ``ImageValidationError``)."""
    return load_image(path, assume_orientation=assume_orientation)


def voxel_hash(image: sitk.Image) -> str:
    """Digest of an image's voxels and size as loaded (header and file name play no part).

    Two subjects whose scans hash alike are one scan re-exported; the dataset step
    refuses them (:mod:`brainaug.duplicates`). Hashing the array already in memory
    costs about a millisecond per megabyte.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(tuple(image.GetSize())).encode())
    digest.update(np.ascontiguousarray(sitk.GetArrayViewFromImage(image), dtype=np.float32).tobytes())
    return digest.hexdigest()


def _as_3d_float(image: sitk.Image, what: str) -> sitk.Image:
    """Squeeze singleton dimensions and check the image is a 3D scalar volume."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"Expected a scalar image in {what}, got {image.GetNumberOfComponentsPerPixel()} components")
    if image.GetDimension() == 4:
        size = list(image.GetSize())
        if 1 not in size:
            raise ValueError(f"Expected a 3D image in {what}, got 4D size {tuple(size)}")
        axis = size.index(1)
        size[axis] = 0
        image = sitk.Extract(image, size, [0, 0, 0, 0])
    if image.GetDimension() != 3:
        raise ValueError(f"Expected a 3D image in {what}, got {image.GetDimension()}D size {image.GetSize()}")
    if min(image.GetSize()) < 4:
        raise ValueError(f"Expected at least 4 voxels per axis in {what}, got size {image.GetSize()}")
    image = sitk.Cast(image, sitk.sitkFloat32)
    arr = sitk.GetArrayViewFromImage(image)
    if not np.isfinite(arr).all():
        raise ValueError(f"Image {what} contains NaN or infinite values")
    if float(arr.max()) <= float(arr.min()):
        raise ValueError(f"Image {what} is constant ({float(arr.min())}); nothing to preprocess")
    return image


def detect_skull_stripped(image: sitk.Image, max_brain_volume_ml: float = 2600.0) -> tuple[bool, float]:
    """Guess whether a T1 scan is already skull-stripped from its foreground volume.

    A stripped brain is ~1.1-1.9 l of non-background voxels; a head with skull,
    scalp and some neck is 3-5 l even with a tight field of view. Foreground is
    everything above 10 % of the robust (1st-99.5th percentile) intensity range.

    Args:
        image: 3D scan (any orientation).
        max_brain_volume_ml: volumes below this count as skull-stripped.

    Returns:
        (stripped, foreground volume in ml).
    """
    factors = [max(1, int(round(2.0 / s))) for s in image.GetSpacing()]
    small = sitk.BinShrink(image, factors) if max(factors) > 1 else image
    arr = sitk.GetArrayViewFromImage(small).astype(np.float32)
    p1, p995 = np.percentile(arr, [1.0, 99.5])
    fg = arr > p1 + 0.1 * (p995 - p1)
    volume_ml = float(fg.sum()) * float(np.prod(small.GetSpacing())) / 1000.0
    return volume_ml < max_brain_volume_ml, volume_ml


def _antialias_sigma(src_spacing: Sequence[float], dst_spacing: Sequence[float]) -> list[float]:
    dst = float(min(dst_spacing))
    return [max(dst - float(s), 0.0) / 2.0 for s in src_spacing]


def _smooth(image: sitk.Image, sigma: Sequence[float]) -> sitk.Image:
    if max(sigma) <= 0:
        return image
    return sitk.SmoothingRecursiveGaussian(image, [s if s > 0 else 1e-3 for s in sigma])


def _to_ras_array(image: sitk.Image) -> np.ndarray:
    """SimpleITK array (z, y, x) -> (x, y, z), the voxel order of the NIfTI affine."""
    return np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0))


@lru_cache(maxsize=8)
def template_on_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Template brain (float32, anti-aliased) and brain mask (bool) on ``output_grid(size)``.

    Both (S, S, S) in RAS voxel order; the reference for QC correlations and masks.
    """
    tpl = load_template()
    grid = output_grid(size)
    brain = _smooth(tpl.t1_brain, _antialias_sigma(tpl.t1_brain.GetSpacing(), grid.GetSpacing()))
    brain = sitk.Resample(brain, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    mask = sitk.Resample(sitk.Cast(tpl.brain_mask, sitk.sitkFloat32), grid, sitk.Transform(),
                         sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    brain_arr, mask_arr = _to_ras_array(brain), _to_ras_array(mask) >= 0.5
    brain_arr.setflags(write=False)
    mask_arr.setflags(write=False)
    return brain_arr, mask_arr


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def template_correlation(volume: np.ndarray, size: int | None = None) -> float:
    """The registration quality metric: Pearson correlation with the template brain inside its mask.

    Both on ``output_grid(S)``: ``volume`` (S, S, S) in RAS voxel order (a preprocessed
    output), against :func:`template_on_grid`'s anti-aliased template brain. This is the
    number ``qc/summary.tsv`` reports and the one ``benchmarks/registration_vs_ants.py``
    scores the project and ANTs with.

    Args:
        volume: (S, S, S) array on ``output_grid(S)``.
        size: S (default ``volume.shape[0]``).
    """
    size = int(volume.shape[0] if size is None else size)
    tpl_brain, tpl_mask = template_on_grid(size)
    return _pearson(np.asarray(volume)[tpl_mask], tpl_brain[tpl_mask])


def finish_on_grid(
    work: sitk.Image,
    transform: sitk.Transform,
    size: int,
    intensity_percentiles: Sequence[float] = (0.5, 99.5),
    stripped: bool = False,
    what: str = "the input image",
) -> tuple[np.ndarray, sitk.Image, np.ndarray, float]:
    """Put a (bias-corrected) scan on ``output_grid(size)`` through ``transform``, mask and scale it.

    The part of :func:`preprocess_scan` after registration: anti-aliasing smoothing,
    resampling, the brain mask, robust scaling to [-1, 1] with background -1, and
    :func:`template_correlation`. The benchmark puts ANTs's registrations through it too.

    Args:
        work: the scan in its own world space (any grid), bias-corrected.
        transform: template -> scan transform (what ``sitk.Resample`` uses).
        size: S.
        intensity_percentiles: (low, high) percentiles inside the mask mapped to -1 and 1.
        stripped: the scan is skull-stripped (the mask also keeps to its own foreground).
        what: the scan's name in error messages.

    Returns:
        (volume (S, S, S) RAS float32, the same as a SimpleITK image, mask (S, S, S) bool, correlation).

    Raises:
        ValueError: the mask is empty on the grid, or the brain has no contrast.
    """
    grid = output_grid(size)
    smooth = _smooth(work, _antialias_sigma(work.GetSpacing(), grid.GetSpacing()))
    out = sitk.Resample(smooth, grid, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    vol = _to_ras_array(out)
    tpl_mask = template_on_grid(size)[1]
    mask = tpl_mask.copy()
    if stripped:
        # Keep the input's own brain boundary: its foreground, pulled into template space.
        arr = sitk.GetArrayViewFromImage(work)
        p1, p995 = np.percentile(arr, [1.0, 99.5])
        own = sitk.Cast(work > float(p1 + 0.02 * (p995 - p1)), sitk.sitkFloat32)
        own = sitk.Resample(own, grid, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        mask &= _to_ras_array(own) >= 0.5
    if mask.sum() < 10:
        raise ValueError(f"Registration of {what} to the template failed: the brain mask is empty on the output grid")
    lo, hi = np.percentile(vol[mask], list(intensity_percentiles))
    if hi <= lo:
        raise ValueError(f"Image {what} has no intensity contrast inside the brain after registration")
    scaled = np.clip((vol - lo) / (hi - lo) * 2.0 - 1.0, -1.0, 1.0).astype(np.float32)
    scaled[~mask] = -1.0
    out_img = sitk.GetImageFromArray(scaled.transpose(2, 1, 0))
    out_img.CopyInformation(grid)
    return scaled, out_img, mask, template_correlation(scaled, size)


def preprocess_scan(
    image: sitk.Image | str | os.PathLike[str],
    size: int | None = None,
    settings: PreprocessSettings | None = None,
) -> PreprocessResult:
    """Preprocess one scan to an S^3 float32 volume in MNI template space, in [-1, 1].

    Args:
        image: a SimpleITK image or a path readable by ``brainaug.io.images.load_image``
            (NIfTI, MGH/MGZ, NRRD/MHA, DICOM folder). 4D images with one singleton
            dimension are squeezed.
        size: S (default ``settings.image_size``).
        settings: :class:`PreprocessSettings` (default: all defaults).

    Returns:
        :class:`PreprocessResult`; ``volume`` is (S, S, S) in RAS voxel order on
        ``output_grid(S)``, brain voxels in [-1, 1], background exactly -1.

    Raises:
        ValueError: the image is not a usable 3D volume (naming it).
    """
    settings = settings or PreprocessSettings.from_config(None)
    size = int(settings.image_size if size is None else size)
    grid = output_grid(size)
    what = str(image) if not isinstance(image, sitk.Image) else "the input image"
    timings: dict[str, float] = {}
    t_start = t = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[f"t_{stage}"] = round(now - t, 3)
        t = now

    with _sitk_threads(settings.threads):
        img = image if isinstance(image, sitk.Image) else _load(image, settings.assume_orientation)
        img = _as_3d_float(img, what)
        content_hash = voxel_hash(img)
        # Canonical orientation, the template's (RAS voxel order). World coordinates
        # do not change; the initializer and the memory layout do.
        target = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(grid.GetDirection())
        img = sitk.DICOMOrient(img, target)
        lap("load")

        forced = settings.skull_stripped_choice
        if forced is None:
            stripped, _ = detect_skull_stripped(img, settings.stripped_max_volume_ml)
        else:
            stripped = forced

        in_spacing = np.asarray(img.GetSpacing(), dtype=float)
        work_spacing = np.maximum(in_spacing, settings.working_spacing_factor * min(grid.GetSpacing()))
        work = resample_like(img, work_spacing) if np.any(work_spacing > in_spacing * 1.05) else img
        lap("downsample")

        if settings.n4 and settings.n4_mask == "head":
            work = n4_correct(img, apply_to=work, spacing_mm=settings.n4_spacing_mm, iterations=settings.n4_iterations)
        lap("n4")

        def register_and_finish(seed: int) -> tuple[float, RegistrationResult, tuple]:
            """Registration (+ brain-masked N4 and refinement) with one sampling seed, then the grid."""
            reg_args = dict(
                template_spacing_mm=settings.registration_spacing_mm,
                iterations=settings.registration_iterations,
                sampling_percentage=settings.registration_sampling_percentage,
                seed=seed,
                histogram_bins=settings.registration_histogram_bins,
            )
            reg = register_to_template(
                unregistered,
                skull=not stripped,
                shrink_factors=settings.registration_shrink_factors,
                smoothing_sigmas=settings.registration_smoothing_sigmas,
                **reg_args,
            )
            lap("register")
            work = unregistered
            if settings.n4 and settings.n4_mask == "brain":
                # Fit the field on the brain only (scalp and fat have their own intensity and
                # pull the field): the template brain mask, pulled back through the first registration.
                brain = sitk.Resample(load_template().brain_mask, work, reg.transform.GetInverse(),
                                      sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
                work = n4_correct(img, apply_to=work, spacing_mm=settings.n4_spacing_mm,
                                  iterations=settings.n4_iterations, mask=brain)
                lap("n4")
            if settings.registration_refine_on_brain:
                fine = slice(1, None) if len(settings.registration_shrink_factors) > 1 else slice(None)
                reg = refine_on_brain(
                    work,
                    reg.transform,
                    skull=not stripped,
                    shrink_factors=settings.registration_shrink_factors[fine],
                    smoothing_sigmas=settings.registration_smoothing_sigmas[fine],
                    **reg_args,
                )
                lap("refine")
            finished = finish_on_grid(work, reg.transform, size, settings.intensity_percentiles, stripped, what)
            lap("resample")
            return finished[3], reg, finished

        # Mattes MI samples voxels at random; now and then a sample steers the similarity
        # stage into a wrong pose (1 of 120 synthetic scans at 32^3: template correlation
        # 0.20 with seed 0, 0.97 with seeds 1 and 2). A registration that ends below
        # registration_retry_below is redone with the next seeds, and the attempt that
        # correlates best with the template is kept (QC flags it as usual if still low).
        unregistered = work
        attempts: list[tuple[float, RegistrationResult, tuple]] = []
        for attempt in range(1 + settings.registration_retries):
            attempts.append(register_and_finish(settings.seed + attempt))
            if attempts[-1][0] >= settings.registration_retry_below:
                break
        _, reg, finished = max(attempts, key=lambda a: a[0])  # the first of equals
        scaled, out_img, mask, correlation = finished

    qc = {
        "correlation": round(correlation, 6),
        "mattes_mi": round(reg.mattes_mi, 6),
        "registration_attempts": len(attempts),
        "skull_stripped_input": bool(stripped),
        "n4_applied": bool(settings.n4),
        "seconds": round(time.perf_counter() - t_start, 3),
        "voxel_hash": content_hash,
        **timings,
    }
    return PreprocessResult(volume=scaled, image=out_img, mask=mask, transform=reg.transform, qc=qc)


def write_nifti(volume: np.ndarray, path: str | os.PathLike[str], size: int | None = None) -> None:
    """Write an (S, S, S) RAS-ordered volume as float32 NIfTI with ``grid_affine(S)``, atomically.

    Written to a temporary file beside ``path`` and then ``os.replace``d, so a crash
    never leaves a half-written output for Snakemake to trust.
    """
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3 or len(set(volume.shape)) != 1:
        raise ValueError(f"Expected an (S, S, S) volume for {path}, got shape {volume.shape}")
    size = volume.shape[0] if size is None else size
    suffix = ".nii.gz" if str(path).endswith(".gz") else ".nii"
    with atomic_output(path, suffix=suffix) as tmp:
        img = nib.Nifti1Image(volume, grid_affine(size))
        img.header.set_xyzt_units("mm")
        img.set_qform(grid_affine(size), code=4)  # 4 = MNI152
        img.set_sform(grid_affine(size), code=4)
        nib.save(img, str(tmp))


def preprocess_file(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    qc_png: str | os.PathLike[str] | None = None,
    size: int | None = None,
    settings: PreprocessSettings | None = None,
    scan_id: str | None = None,
) -> dict[str, Any]:
    """Preprocess ``in_path`` into ``out_path`` (NIfTI) and draw the QC picture.

    Args:
        in_path: input scan (file or DICOM folder).
        out_path: output ``.nii.gz`` (written atomically; nothing is written on error).
        qc_png: three-plane QC PNG path, or ``None`` for none.
        size: S (default ``settings.image_size``).
        settings: :class:`PreprocessSettings`.
        scan_id: value of the row's ``scan_id`` (default: ``out_path``'s name without ``.nii.gz``).

    Returns:
        The QC row: ``scan_id``, ``correlation``, ``mattes_mi``, ``skull_stripped_input``,
        ``n4_applied``, ``seconds``, stage timings, ``input``, ``output``.
    """
    from brainaug.preprocess.qc import plot_qc

    settings = settings or PreprocessSettings.from_config(None)
    size = int(settings.image_size if size is None else size)
    result = preprocess_scan(in_path, size, settings)
    out = Path(out_path)
    write_nifti(result.volume, out, size)
    if scan_id is None:
        scan_id = out.name.removesuffix(".gz").removesuffix(".nii")
    if qc_png is not None:
        title = f"{scan_id}  r={result.qc['correlation']:.3f}"
        plot_qc(result.volume, qc_png, title=title, mask=template_on_grid(size)[1])
    return {"scan_id": scan_id, **result.qc, "input": str(in_path), "output": str(out)}
