"""load_image: every format lands with the right shape, spacing and world geometry."""

from __future__ import annotations

import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from brainaug.io.images import (
    ImageValidationError,
    check_image_shape,
    load_image,
    nibabel_to_sitk,
    read_image_shape,
    validate_image_array,
)

SHAPE = (6, 7, 5)  # (X, Y, Z)
VOXEL = (4, 2, 3)  # an index with a known value


def _volume(seed: int = 0) -> np.ndarray:
    """(X, Y, Z) float32 volume with a unique, recognisable value at VOXEL."""
    data = np.random.default_rng(seed).uniform(0, 100, SHAPE).astype(np.float32)
    data[VOXEL] = 1234.5
    return data


def _oblique_affine() -> np.ndarray:
    """RAS affine with anisotropic voxels, a rotation and a flipped axis."""
    angle = np.deg2rad(20)
    rot = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([1.5, 1.0, -2.0])
    affine[:3, 3] = [-10.0, 20.0, 5.0]
    return affine


def _sitk_image() -> sitk.Image:
    image = sitk.GetImageFromArray(_volume().transpose(2, 1, 0))
    image.SetSpacing((1.2, 0.9, 2.5))
    image.SetOrigin((3.0, -4.0, 7.5))
    c, s = np.cos(0.3), np.sin(0.3)
    image.SetDirection((c, -s, 0, s, c, 0, 0, 0, 1))
    return image


def _check_voxel_at_ras(image: sitk.Image, affine: np.ndarray) -> None:
    """The known voxel has the same value and the same world point as in the source."""
    ras = affine @ np.array([*VOXEL, 1.0])
    lps = np.array(image.TransformIndexToPhysicalPoint(VOXEL))
    np.testing.assert_allclose(lps, [-ras[0], -ras[1], ras[2]], atol=1e-4)
    assert image.GetPixel(VOXEL) == pytest.approx(1234.5)


def _check_common(image: sitk.Image) -> None:
    assert image.GetDimension() == 3
    assert image.GetSize() == SHAPE
    assert image.GetPixelID() == sitk.sitkFloat32


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_geometry(tmp_path: Path, suffix: str) -> None:
    affine = _oblique_affine()
    path = tmp_path / f"t1{suffix}"
    nib.save(nib.Nifti1Image(_volume(), affine), path)
    image = load_image(path)
    _check_common(image)
    np.testing.assert_allclose(image.GetSpacing(), [1.5, 1.0, 2.0], atol=1e-5)
    _check_voxel_at_ras(image, affine)


@pytest.mark.parametrize("suffix", [".mgz", ".mgh"])
def test_mgh_geometry(tmp_path: Path, suffix: str) -> None:
    affine = _oblique_affine()
    path = tmp_path / f"t1{suffix}"
    nib.save(nib.MGHImage(_volume(), affine), path)
    image = load_image(path)
    _check_common(image)
    np.testing.assert_allclose(image.GetSpacing(), [1.5, 1.0, 2.0], atol=1e-5)
    _check_voxel_at_ras(image, affine)


def test_mgz_matches_nifti_of_same_data(tmp_path: Path) -> None:
    """The nibabel route and SimpleITK's NIfTI reader agree on geometry."""
    affine = _oblique_affine()
    nib.save(nib.MGHImage(_volume(), affine), tmp_path / "a.mgz")
    nib.save(nib.Nifti1Image(_volume(), affine), tmp_path / "a.nii.gz")
    a, b = load_image(tmp_path / "a.mgz"), load_image(tmp_path / "a.nii.gz")
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-5)
    np.testing.assert_allclose(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
def test_sitk_formats_geometry(tmp_path: Path, suffix: str) -> None:
    source = _sitk_image()
    path = tmp_path / f"t1{suffix}"
    sitk.WriteImage(sitk.Cast(source, sitk.sitkInt16), str(path))
    image = load_image(path)
    _check_common(image)
    np.testing.assert_allclose(image.GetSpacing(), source.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(
        image.TransformIndexToPhysicalPoint(VOXEL),
        source.TransformIndexToPhysicalPoint(VOXEL),
        atol=1e-5,
    )
    assert image.GetPixel(VOXEL) == 1234  # cast to int16 on write


def _write_dicom_series(
    folder: Path, image: sitk.Image, series_uid: str, prefix: str = "slice"
) -> None:
    """One 2D DICOM file per slice, as in SimpleITK's DicomSeriesFromArray example."""
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.Cast(image, sitk.sitkInt16)
    direction = image.GetDirection()
    date, clock = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    shared = [
        ("0008|0031", clock),
        ("0008|0021", date),
        ("0008|0060", "MR"),
        ("0020|000d", "1.2.826.0.1.3680043.2.1125.1"),
        ("0020|000e", series_uid),
        ("0020|0037", "\\".join(f"{v:.6f}" for v in (*direction[0::3], *direction[1::3]))),
        ("0008|103e", "T1w"),
        ("0010|0020", "sub-01"),
    ]
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        slice_ = image[:, :, k]
        for tag, value in shared:
            slice_.SetMetaData(tag, value)
        slice_.SetMetaData("0008|0008", "ORIGINAL\\PRIMARY")
        slice_.SetMetaData("0008|0018", f"{series_uid}.{k + 1}")
        slice_.SetMetaData(
            "0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k))))
        )
        slice_.SetMetaData("0020|0013", str(k + 1))
        slice_.SetMetaData("0018|0050", str(image.GetSpacing()[2]))
        writer.SetFileName(str(folder / f"{prefix}{k:03d}.dcm"))
        writer.Execute(slice_)


def test_dicom_series_folder(tmp_path: Path) -> None:
    source = _sitk_image()
    _write_dicom_series(tmp_path / "dicom", source, "1.2.826.0.1.3680043.2.1125.2")
    image = load_image(tmp_path / "dicom")
    _check_common(image)
    np.testing.assert_allclose(image.GetSpacing(), source.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(
        image.TransformIndexToPhysicalPoint(VOXEL),
        source.TransformIndexToPhysicalPoint(VOXEL),
        atol=1e-3,
    )
    assert image.GetPixel(VOXEL) == 1234
    assert read_image_shape(tmp_path / "dicom") == SHAPE


def test_dicom_folder_with_two_series(tmp_path: Path) -> None:
    source = _sitk_image()
    _write_dicom_series(tmp_path / "dicom", source, "1.2.826.0.1.3680043.2.1125.2")
    _write_dicom_series(tmp_path / "dicom", source, "1.2.826.0.1.3680043.2.1125.3", "other")
    with pytest.raises(ImageValidationError, match=r"dicom holds 2 DICOM series"):
        load_image(tmp_path / "dicom")


def test_empty_folder_is_not_dicom(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageValidationError, match=r"empty is a folder but holds no DICOM series"):
        load_image(tmp_path / "empty")


def test_singleton_fourth_axis_is_squeezed(tmp_path: Path) -> None:
    affine = _oblique_affine()
    nib.save(nib.Nifti1Image(_volume()[..., None], affine), tmp_path / "a.nii.gz")
    image = load_image(tmp_path / "a.nii.gz")
    _check_common(image)
    _check_voxel_at_ras(image, affine)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageValidationError, match=r"Image not found: .*nothere\.nii\.gz"):
        load_image(tmp_path / "nothere.nii.gz")


@pytest.mark.parametrize("name", ["bad.nii.gz", "bad.mgz", "bad.nrrd"])
def test_corrupt_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"this is not an image" * 10)
    with pytest.raises(ImageValidationError, match=rf"Cannot read image .*{name}") as info:
        load_image(tmp_path / name)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("name", ["flat.nii.gz", "flat.mgz"])
def test_2d_image(tmp_path: Path, name: str) -> None:
    data = np.random.default_rng(0).uniform(size=(6, 7, 1)).astype(np.float32)
    cls = nib.MGHImage if name.endswith("mgz") else nib.Nifti1Image
    nib.save(cls(data, np.eye(4)), tmp_path / name)
    with pytest.raises(ImageValidationError, match=rf"Expected a 3D image in .*{name}.*\(6, 7, 1\)"):
        load_image(tmp_path / name)


@pytest.mark.parametrize("name", ["bold.nii.gz", "bold.mgz"])
def test_true_4d_image(tmp_path: Path, name: str) -> None:
    data = np.random.default_rng(0).uniform(size=(*SHAPE, 3)).astype(np.float32)
    cls = nib.MGHImage if name.endswith("mgz") else nib.Nifti1Image
    nib.save(cls(data, np.eye(4)), tmp_path / name)
    with pytest.raises(ImageValidationError, match=rf"{name}, got a 4D image with 3 volumes"):
        load_image(tmp_path / name)
    with pytest.raises(ImageValidationError, match=rf"{name}, got a 4D image with 3 volumes"):
        check_image_shape(read_image_shape(tmp_path / name), tmp_path / name)


@pytest.mark.parametrize("name", ["nan.nii.gz", "nan.mgz", "nan.nrrd"])
def test_non_finite_voxels(tmp_path: Path, name: str) -> None:
    data = _volume()
    data[0, 0, 0] = np.nan
    data[1, 0, 0] = np.inf
    if name.endswith(".nrrd"):
        sitk.WriteImage(sitk.GetImageFromArray(data.transpose(2, 1, 0)), str(tmp_path / name))
    else:
        cls = nib.MGHImage if name.endswith("mgz") else nib.Nifti1Image
        nib.save(cls(data, np.eye(4)), tmp_path / name)
    with pytest.raises(ImageValidationError, match=rf"{name} has 2 non-finite"):
        load_image(tmp_path / name)


@pytest.mark.parametrize("name", ["const.nii.gz", "const.mgz"])
def test_constant_image(tmp_path: Path, name: str) -> None:
    cls = nib.MGHImage if name.endswith("mgz") else nib.Nifti1Image
    nib.save(cls(np.full(SHAPE, 7, np.float32), np.eye(4)), tmp_path / name)
    with pytest.raises(ImageValidationError, match=rf"{name} is constant \(every voxel is 7"):
        load_image(tmp_path / name)


def test_read_image_shape_header_only(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(_volume()[..., None], np.eye(4)), tmp_path / "a.nii.gz")
    nib.save(nib.MGHImage(_volume(), np.eye(4)), tmp_path / "a.mgz")
    assert read_image_shape(tmp_path / "a.nii.gz")[:3] == SHAPE
    assert read_image_shape(tmp_path / "a.mgz") == SHAPE
    with pytest.raises(ImageValidationError, match="Image not found"):
        read_image_shape(tmp_path / "b.nii.gz")


def test_sheared_affine_keeps_voxel_centres_close() -> None:
    """A shear cannot be stored in ITK; the nearest rotation is used, not garbage."""
    affine = np.eye(4)
    affine[0, 1] = 0.01
    image = nibabel_to_sitk(_volume(), affine)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(direction.T @ direction, np.eye(3), atol=1e-9)
    with pytest.raises(ValueError, match="Expected a 3D array"):
        nibabel_to_sitk(np.zeros((2, 2)), affine)


def test_validate_image_array_accepts_one_volume_and_rejects_slices() -> None:
    data = _volume()
    validate_image_array(data[..., None], "x.nii")  # (X, Y, Z, 1): one volume
    validate_image_array(data.astype(np.int16), "x.nii")  # integers have no NaN
    with pytest.raises(ImageValidationError, match=r"Expected a 3D image in x\.nii.*\(6, 7\)"):
        validate_image_array(data[:, :, 0], "x.nii")
    with pytest.raises(ImageValidationError, match=r"x\.nii is constant"):
        validate_image_array(np.zeros(SHAPE, np.uint8), "x.nii")
