"""Header checks that catch files no MRI can be, before any voxel is read.

Two kinds of header pass a plain "is it 3D?" check and still corrupt a study:

- an impossible size (a corrupt or hostile header claiming 4000^3 voxels over a
  1 KB file) would only fail inside its own preprocessing job, after every other
  scan was processed, with an empty reason;
- a NIfTI without orientation (``qform_code = sform_code = 0``) or without valid
  voxel sizes: left and right cannot be known, registration may flip the brain,
  and the run goes on. Such a file is an error unless the user says, with
  ``preprocess.assume_orientation``, which orientation to assume.

MGH/MGZ, NRRD, MHA and DICOM always carry an orientation; only NIfTI (and its
Analyze ancestry) can lack one. Every check reads the header only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainaug.io.images import ImageValidationError

__all__ = [
    "MAX_VOXELS",
    "ORIENTATION_CODES",
    "check_nifti_header",
    "check_orientation_code",
    "check_plausible_size",
    "is_nifti",
    "orientation_affine",
]

#: More voxels than any MRI volume a dementia study would bring (1000^3: 0.25 mm
#: isotropic over a 25 cm field of view). Anything larger is a corrupt header.
MAX_VOXELS = 10**9

#: The letters of a three-letter orientation code (``RAS``, ``LPS``, ``LAS`` ...),
#: each naming where an axis points, as nibabel's ``aff2axcodes`` writes them.
ORIENTATION_CODES = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}


def is_nifti(path: str | Path) -> bool:
    """``.nii`` or ``.nii.gz``."""
    return str(path).lower().endswith((".nii", ".nii.gz"))


def check_plausible_size(shape: tuple[int, ...], path: str | Path) -> None:
    """Refuse a header whose voxel count no MRI can have.

    Raises:
        ImageValidationError: more than :data:`MAX_VOXELS` voxels, with the claimed shape and file.
    """
    n = int(np.prod([int(s) for s in shape], dtype=object))
    if n > MAX_VOXELS:
        raise ImageValidationError(
            f"The header of {path} claims shape {tuple(int(s) for s in shape)} ({n:.3g} voxels), "
            f"more than any MRI volume (at most {MAX_VOXELS:.0e}); the header is corrupt"
        )


def check_orientation_code(code: str) -> str:
    """Return ``code`` upper-cased if it names three different axes (``RAS``, ``LPS``...).

    Raises:
        ValueError: not three letters from R/L, A/P, S/I covering each axis once.
    """
    text = str(code).strip().upper()
    axes = [ORIENTATION_CODES.get(c, (None, 0))[0] for c in text]
    if len(text) != 3 or None in axes or sorted(axes) != [0, 1, 2]:
        raise ValueError(
            f"preprocess.assume_orientation must be three letters, one of R/L, A/P and S/I each "
            f"(e.g. RAS or LPS), got {code!r}"
        )
    return text


def orientation_affine(code: str, zooms: tuple[float, float, float]) -> np.ndarray:
    """Voxel-to-RAS affine of a volume whose axes point as ``code`` says, origin at voxel 0.

    Args:
        code: three letters, e.g. ``"RAS"`` (axis 0 points right, 1 anterior, 2 superior).
        zooms: voxel sizes in mm.
    """
    code = check_orientation_code(code)
    affine = np.eye(4)
    affine[:3, :3] = 0.0
    for i, letter in enumerate(code):
        world, sign = ORIENTATION_CODES[letter]
        affine[world, i] = sign * float(zooms[i])
    return affine


def _pixdim_problem(pixdim: np.ndarray) -> str | None:
    # Negative sizes occur in the wild and readers use their magnitude; zero or NaN cannot be used.
    zooms = np.asarray(pixdim[1:4], dtype=float)
    if not np.all(np.isfinite(zooms)) or np.any(zooms == 0):
        return f"has no valid voxel size (pixdim[1:4] = {zooms.tolist()}; zero or not a number)"
    return None


def _raw_pixdim(path: Path, header_class: type) -> np.ndarray:
    """pixdim as stored: nibabel's loader quietly turns zero voxel sizes into 1 (with a warning)."""
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path)) as handle:
        return np.asarray(header_class.from_fileobj(handle, check=False)["pixdim"], dtype=float)


def check_nifti_header(path: str | Path, assume_orientation: str | None = None) -> None:
    """Refuse a NIfTI header with an impossible size, no voxel size or no orientation.

    Args:
        path: ``.nii`` or ``.nii.gz`` file (only its header is read).
        assume_orientation: ``None`` (no orientation is an error) or the code
            (``"RAS"``, ``"LPS"``...) the user chose to assume for such files.

    Raises:
        ImageValidationError: naming the file and what is missing or impossible.
    """
    import nibabel as nib

    path = Path(path)
    try:
        image = nib.load(str(path))
        header = image.header
    except Exception as err:  # nibabel raises several unrelated types
        raise ImageValidationError(f"Cannot read image {path}: {err or type(err).__name__}") from err
    shape = tuple(int(s) for s in header.get_data_shape())
    check_plausible_size(shape, path)
    if path.name.lower().endswith(".nii"):
        # The loaded header's vox_offset is reset to 0; the array proxy keeps the file's.
        offset = int(getattr(image.dataobj, "offset", 0))
        needed = offset + int(np.prod(shape, dtype=object)) * header.get_data_dtype().itemsize
        size = path.stat().st_size
        if needed > size:
            raise ImageValidationError(
                f"The header of {path} claims shape {shape} of {header.get_data_dtype()} ({needed} bytes), "
                f"but the file holds {size} bytes; it is truncated or its header is corrupt"
            )
    pixdim_problem = _pixdim_problem(_raw_pixdim(path, type(header)))
    if pixdim_problem:
        raise ImageValidationError(
            f"{path} {pixdim_problem}: its size in millimetres is unknown. Fix the header (re-export the scan)"
        )
    if int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0 and assume_orientation is None:
        raise ImageValidationError(
            f"{path} has no orientation (qform_code = sform_code = 0): left and right cannot be told apart. "
            "Fix the header (e.g. re-export it with its orientation), or set preprocess.assume_orientation "
            "(e.g. RAS or LPS) to say which orientation every such file has"
        )
