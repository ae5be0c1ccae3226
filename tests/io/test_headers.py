"""brainaug.io.headers: impossible sizes and missing orientation, from the header alone."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainaug.io.headers import check_nifti_header, orientation_affine
from brainaug.io.images import ImageValidationError, load_image


def _volume() -> np.ndarray:
    return np.random.default_rng(0).random((6, 7, 8)).astype(np.float32)


def test_a_4000_cubed_header_over_a_tiny_file_is_refused(tmp_path: Path) -> None:
    header = nib.Nifti1Header()
    header.set_data_shape((4000, 4000, 4000))
    header.set_sform(np.eye(4), 1)
    path = tmp_path / "bomb.nii.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(header.binaryblock + b"\0" * 100)
    with pytest.raises(ImageValidationError, match=r"bomb\.nii\.gz claims shape \(4000, 4000, 4000\)"):
        check_nifti_header(path)
    with pytest.raises(ImageValidationError, match=r"more than any MRI volume"):
        load_image(path)


def test_a_truncated_uncompressed_nifti_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.nii"
    nib.save(nib.Nifti1Image(_volume(), np.eye(4)), path)
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(ImageValidationError, match=r"claims shape \(6, 7, 8\) of float32 \(1696 bytes\), but the file holds 600"):
        check_nifti_header(path)


def test_no_orientation_is_refused_unless_assumed(tmp_path: Path) -> None:
    path = tmp_path / "n.nii.gz"
    nib.save(nib.Nifti1Image(_volume(), None), path)
    with pytest.raises(ImageValidationError, match=r"n\.nii\.gz has no orientation \(qform_code = sform_code = 0\)"):
        load_image(path)
    image = load_image(path, assume_orientation="LPS")
    # LPS voxel axes in ITK's LPS world: the identity direction.
    assert np.allclose(image.GetDirection(), np.eye(3).ravel())
    image = load_image(path, assume_orientation="RAS")
    assert np.allclose(image.GetDirection(), np.diag([-1.0, -1.0, 1.0]).ravel())


def test_zero_voxel_size_is_refused_even_when_orientation_is_assumed(tmp_path: Path) -> None:
    path = tmp_path / "z.nii"
    nib.save(nib.Nifti1Image(_volume(), None), path)
    raw = bytearray(path.read_bytes())
    raw[80:92] = np.zeros(3, dtype="<f4").tobytes()  # pixdim[1:4]
    path.write_bytes(bytes(raw))
    with pytest.raises(ImageValidationError, match=r"z\.nii has no valid voxel size \(pixdim\[1:4\] = \[0\.0, 0\.0, 0\.0\]"):
        check_nifti_header(path, assume_orientation="RAS")


def test_orientation_affine() -> None:
    assert np.array_equal(orientation_affine("LPI", (2.0, 3.0, 4.0))[:3, :3], np.diag([-2.0, -3.0, -4.0]))
    with pytest.raises(ValueError, match=r"three letters, one of R/L, A/P and S/I each"):
        orientation_affine("RRS", (1.0, 1.0, 1.0))
