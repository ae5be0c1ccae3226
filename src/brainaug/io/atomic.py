"""One way to write an output file so that a crash never leaves half of it.

Snakemake treats an existing output as done, and a resumable training job
trusts the checkpoint it finds; so every writer in the package writes to a
temporary file beside the destination and renames it into place with
:func:`os.replace` (atomic on POSIX, same folder so same file system).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output"]


@contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, suffix: str | None = None, fsync: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success ``os.replace`` it onto ``path``.

    The temporary name keeps the suffix, because writers pick the format from it
    (matplotlib, nibabel, ``np.savez``); on any exception it is removed and the
    previous ``path``, if any, is left untouched.

    Args:
        path: final file path; its parent folder is created.
        suffix: suffix of the temporary name when the last one is not enough
            (``".nii.gz"``: nibabel needs both); default ``Path(path).suffix``.
        fsync: flush the written file to disk before the rename, for files
            whose loss after a power cut would cost hours (training checkpoints).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=final.parent, prefix=f".{final.name}.", suffix=final.suffix if suffix is None else suffix
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
