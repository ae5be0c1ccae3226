"""Results: the strategy comparison table, statistics, leakage checks, figures, Fréchet distance.

Submodules are imported on demand (``from brainaug.results.table import ...``) so that
importing one does not pull in matplotlib or scipy for the others.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output"]


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success ``os.replace`` it onto ``path``.

    Why: Snakemake treats an existing output as done, so a crash half-way through
    writing a table or PNG must not leave a truncated file under the final name.
    The temporary name keeps the suffix (matplotlib picks the format from it).

    Args:
        path: final file path; its parent folder is created.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.stem}.", suffix=final.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
