"""Input and output: one loader for every image format, with validation that names
the file, and one atomic writer for every output.

The image helpers are imported on first use, so that a module which only writes
files (``brainaug.gan``, ``brainaug.results``) does not load SimpleITK.
"""

from __future__ import annotations

from typing import Any

from brainaug.io.atomic import atomic_output

__all__ = [
    "ImageValidationError",
    "atomic_output",
    "check_image_shape",
    "load_image",
    "nibabel_to_sitk",
    "read_image_shape",
    "validate_image_array",
]

_IMAGES = {name for name in __all__ if name != "atomic_output"}


def __getattr__(name: str) -> Any:
    if name in _IMAGES:
        from brainaug.io import images

        return getattr(images, name)
    raise AttributeError(f"module 'brainaug.io' has no attribute {name!r}")
