"""Process-wide memory allocator setting for the workflow's jobs (no torch import: every rule uses it)."""

from __future__ import annotations

import ctypes
import functools
import sys

__all__ = ["retain_freed_memory"]


@functools.lru_cache(maxsize=1)
def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of handing large blocks back to the kernel.

    Why: glibc serves each allocation above 32 MB with its own ``mmap`` and
    unmaps it on free, so every training iteration page-faults its large
    tensors (activations, weight gradients, bf16 weight copies) in anew. On
    these machines that was a third of the fp32 iteration's time and a fifth
    of the bf16 one's (``benchmarks/gan_step.py``, sys time). After this call
    large blocks come from the heap and are reused; the process's resident
    memory stays at its peak instead of shrinking between iterations.

    Applies to the whole process, once; every workflow job calls it
    (:func:`brainaug.workflow_step.workflow_step`). Returns whether it took effect (False off
    glibc, e.g. on macOS, where it does nothing).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # from <malloc.h>
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))

