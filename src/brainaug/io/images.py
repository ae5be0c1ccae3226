"""Load one 3D brain image from any format a user is likely to bring, or fail clearly.

Every later stage (preprocessing, QC, the GAN) assumes a single finite,
non-constant 3D float32 volume with correct world geometry. Checking that
here, once, with messages that name the file, is cheaper than debugging a NaN
loss or a misregistered scan three rules later.

Formats: NIfTI (``.nii``, ``.nii.gz``), NRRD, MHA/MHD and other files SimpleITK
reads; MGH/MGZ through nibabel (SimpleITK has no MGH reader); DICOM series given
as a folder. Geometry is SimpleITK's: LPS world coordinates in millimetres.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

__all__ = [
    "ImageValidationError",
    "load_image",
    "read_image_shape",
    "check_image_shape",
    "validate_image_array",
    "nibabel_to_sitk",
]

logger = logging.getLogger(__name__)

#: Suffixes read through nibabel rather than SimpleITK.
_NIBABEL_SUFFIXES = (".mgz", ".mgh", ".mgh.gz")

#: nibabel affines are RAS+, ITK physical space is LPS+: flip x and y.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


class ImageValidationError(ValueError):
    """An image file is missing, unreadable, or not a usable 3D volume."""


def _is_nibabel_path(path: Path) -> bool:
    return path.name.lower().endswith(_NIBABEL_SUFFIXES)


def check_image_shape(shape: tuple[int, ...], path: str | Path) -> None:
    """Check that an image shape describes exactly one 3D volume.

    Shared by the header-only check (:func:`read_image_shape`) and the voxel
    check (:func:`validate_image_array`) so both give the same message.

    Args:
        shape: sizes in index order ``(X, Y, Z[, T, ...])`` (SimpleITK / nibabel
            order, not NumPy's reversed ``(Z, Y, X)`` from ``GetArrayFromImage``).
        path: the file, named in the error.

    Raises:
        ImageValidationError: fewer than 3 spatial dimensions of size > 1 (a 2D
            image or a single slice), or more than one volume along the
            dimensions after the third (a true 4D image).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 3 or any(s < 2 for s in shape[:3]):
        raise ImageValidationError(
            f"Expected a 3D image in {path}, got a 2D image or single slice of shape {shape}"
        )
    n_volumes = int(np.prod(shape[3:])) if len(shape) > 3 else 1
    if n_volumes > 1:
        raise ImageValidationError(
            f"Expected a single 3D volume in {path}, got a 4D image with {n_volumes} volumes "
            f"(shape {shape}); extract the T1-weighted volume first"
        )


def validate_image_array(array: np.ndarray, path: str | Path) -> None:
    """Check the voxels of an image before anything computes on them.

    Args:
        array: voxel values in index order ``(X, Y, Z[, T, ...])`` (transpose a
            SimpleITK array, whose axes are reversed).
        path: the file, named in the error.

    Raises:
        ImageValidationError: bad shape (see :func:`check_image_shape`),
            NaN/Inf voxels (with their count), or a constant image.
    """
    check_image_shape(array.shape, path)
    if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.complexfloating):
        n_bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if n_bad:
            raise ImageValidationError(
                f"{path} has {n_bad} non-finite (NaN or Inf) voxels out of {array.size}"
            )
    lo, hi = np.min(array), np.max(array)
    if lo == hi:
        raise ImageValidationError(f"{path} is constant (every voxel is {lo}); expected an MRI volume")


def nibabel_to_sitk(data: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """Build a SimpleITK image from nibabel voxels and a RAS affine, keeping geometry.

    nibabel's affine maps voxel indices to RAS+ millimetres; ITK's
    spacing/direction/origin map them to LPS+. Flipping the first two world
    axes converts one to the other; the column norms of the linear part are the
    spacing and the normalized columns the direction cosines. A sheared affine
    (non-orthogonal columns) cannot be represented exactly in ITK: its direction
    is replaced by the nearest rotation (polar decomposition) with a warning.

    Args:
        data: voxels, shape ``(X, Y, Z)``.
        affine: 4x4 voxel-to-RAS matrix.

    Returns:
        A float32 SimpleITK image whose ``TransformIndexToPhysicalPoint((i, j, k))``
        equals ``affine @ (i, j, k, 1)`` with x and y negated.
    """
    if data.ndim != 3:
        raise ValueError(f"Expected a 3D array, got shape {data.shape}")
    lps = _RAS_TO_LPS @ np.asarray(affine, dtype=np.float64)
    linear = lps[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"Affine has a zero-length voxel axis: spacing {spacing.tolist()}")
    direction = linear / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        u, _, vt = np.linalg.svd(direction)
        direction = u @ vt
        logger.warning("Affine is sheared; using the nearest rotation as the ITK direction")
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0), dtype=np.float32))
    image.SetSpacing(spacing.tolist())
    image.SetDirection(direction.flatten().tolist())
    image.SetOrigin(lps[:3, 3].tolist())
    return image


def _dicom_series_files(folder: Path) -> list[str]:
    """File names of the single DICOM series in ``folder`` (sorted by GDCM)."""
    try:
        series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    except RuntimeError as err:
        raise ImageValidationError(f"Cannot scan {folder} for DICOM series: {err}") from err
    if not series_ids:
        raise ImageValidationError(f"{folder} is a folder but holds no DICOM series")
    if len(series_ids) > 1:
        raise ImageValidationError(
            f"{folder} holds {len(series_ids)} DICOM series ({', '.join(series_ids)}); "
            "expected one series per folder"
        )
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0]))


def read_image_shape(path: str | Path) -> tuple[int, ...]:
    """Read an image's shape from its header only, without loading voxels.

    Lets a workflow reject 2D, 4D and unreadable files for a whole cohort in
    seconds, before any per-scan work starts.

    Args:
        path: image file or DICOM series folder.

    Returns:
        Sizes in index order ``(X, Y, Z[, T, ...])``; for a multi-component
        (vector) pixel type the component count is appended as a last axis.

    Raises:
        ImageValidationError: missing or unreadable file.
    """
    path = Path(path)
    if not path.exists():
        raise ImageValidationError(f"Image not found: {path}")
    if path.is_dir():
        files = _dicom_series_files(path)
        reader = sitk.ImageFileReader()
        reader.SetFileName(files[0])
        try:
            reader.ReadImageInformation()
        except RuntimeError as err:
            raise ImageValidationError(f"Cannot read DICOM file {files[0]} in {path}: {err}") from err
        size = list(reader.GetSize())
        # One file per slice: the series' third axis is the number of files.
        if len(size) == 2 or (len(size) == 3 and size[2] == 1):
            size = size[:2] + [len(files)]
        return tuple(size)
    if _is_nibabel_path(path):
        try:
            return tuple(int(s) for s in nib.load(str(path)).shape)
        except Exception as err:  # nibabel raises several unrelated types
            raise ImageValidationError(f"Cannot read image {path}: {err}") from err
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise ImageValidationError(f"Cannot read image {path}: {err}") from err
    size = tuple(reader.GetSize())
    n_comp = reader.GetNumberOfComponents()
    return size + (n_comp,) if n_comp > 1 else size


def _squeeze_sitk(image: sitk.Image) -> sitk.Image:
    """Drop axes after the third (known to be singleton) and vector components."""
    if image.GetNumberOfComponentsPerPixel() > 1:
        # check_image_shape has already rejected more than one component.
        image = sitk.VectorIndexSelectionCast(image, 0)
    if image.GetDimension() > 3:
        size = list(image.GetSize())
        image = sitk.Extract(image, size[:3] + [0] * (len(size) - 3), [0] * len(size))
    return image


def _load_sitk(path: Path) -> sitk.Image:
    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(_dicom_series_files(path))
            return reader.Execute()
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise ImageValidationError(f"Cannot read image {path}: {err}") from err


def _load_nibabel(path: Path) -> sitk.Image:
    from brainaug.io.headers import check_plausible_size

    try:
        img = nib.load(str(path))
    except Exception as err:  # nibabel raises several unrelated types
        raise ImageValidationError(f"Cannot read image {path}: {err}") from err
    check_plausible_size(img.shape, path)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # nibabel raises several unrelated types
        raise ImageValidationError(f"Cannot read image {path}: {err}") from err
    validate_image_array(data, path)
    data = data.reshape(data.shape[:3])  # drop singleton trailing axes
    return nibabel_to_sitk(data.astype(np.float32, copy=False), img.affine)


def load_image(path: str | Path, assume_orientation: str | None = None) -> sitk.Image:
    """Load one 3D MRI volume as a float32 SimpleITK image, validated.

    Singleton axes after the third are dropped (a NIfTI of shape (X, Y, Z, 1)
    is 3D). DICOM: pass the folder of one series. A NIfTI header is checked
    first (:func:`brainaug.io.headers.check_nifti_header`): an impossible size,
    invalid voxel sizes, or no orientation is an error naming the file.

    Args:
        path: ``.nii``, ``.nii.gz``, ``.mgz``, ``.mgh``, ``.nrrd``, ``.mha``,
            ``.mhd`` (or anything else SimpleITK reads), or a DICOM series folder.
        assume_orientation: for a NIfTI without orientation (``qform_code =
            sform_code = 0``) only: the axis code to assume (``"RAS"``,
            ``"LPS"``...), origin at voxel 0; ``None`` makes such a file an error.

    Returns:
        3D float32 ``sitk.Image`` with the file's spacing, origin and direction (LPS).

    Raises:
        ImageValidationError: missing or unreadable file, several DICOM series
            in the folder, 2D image, 4D image with several volumes, NaN/Inf
            voxels, constant image. The message names ``path``.
    """
    path = Path(path)
    if not path.exists():
        raise ImageValidationError(f"Image not found: {path}")
    if _is_nibabel_path(path):
        return _load_nibabel(path)
    if path.name.lower().endswith((".nii", ".nii.gz")):
        from brainaug.io.headers import check_nifti_header, orientation_affine

        check_nifti_header(path, assume_orientation)
        # ITK's NIfTI reader silently turns NaN/Inf into 0, so check the
        # voxels through nibabel; geometry still comes from SimpleITK below.
        try:
            nifti = nib.load(str(path))
            voxels = np.asanyarray(nifti.dataobj)
        except Exception as err:  # nibabel raises several unrelated types
            raise ImageValidationError(f"Cannot read image {path}: {err}") from err
        validate_image_array(voxels, path)
        header = nifti.header
        if int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0:
            # The user chose this orientation (preprocess.assume_orientation).
            affine = orientation_affine(assume_orientation, tuple(header.get_zooms()[:3]))
            logger.warning("%s has no orientation; assuming %s as configured", path, assume_orientation)
            data = voxels.reshape(voxels.shape[:3]).astype(np.float32, copy=False)
            return nibabel_to_sitk(data, affine)
        del voxels
        image = _load_sitk(path)
        return _finish_sitk(image)
    image = _load_sitk(path)
    shape = tuple(image.GetSize())
    n_comp = image.GetNumberOfComponentsPerPixel()
    if n_comp > 1:
        shape = shape + (n_comp,)
    # Vector images: GetArrayView gives (Z, Y, X, C); reversing the first
    # dimension axes and moving C last gives (X, Y, Z, C) as check expects.
    array = sitk.GetArrayViewFromImage(image)
    array = np.moveaxis(array, -1, 0).T if n_comp > 1 else array.T
    if array.shape != shape:  # defensive: never expected
        raise ImageValidationError(f"Unexpected array layout {array.shape} for {path} of size {shape}")
    validate_image_array(array, path)
    return _finish_sitk(image)


def _finish_sitk(image: sitk.Image) -> sitk.Image:
    """Squeeze a validated image to 3D and cast it to float32."""
    image = _squeeze_sitk(image)
    if image.GetPixelID() != sitk.sitkFloat32:
        image = sitk.Cast(image, sitk.sitkFloat32)
    return image
