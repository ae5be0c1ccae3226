"""Image input: one loader for every format, with validation that names the file."""

from __future__ import annotations

from brainaug.io.images import (
    ImageValidationError,
    check_image_shape,
    load_image,
    nibabel_to_sitk,
    read_image_shape,
    validate_image_array,
)

__all__ = [
    "ImageValidationError",
    "check_image_shape",
    "load_image",
    "nibabel_to_sitk",
    "read_image_shape",
    "validate_image_array",
]
