"""One brain under two subjects, found on the preprocessed volumes before training.

The cohort stage refuses two subjects naming one file or byte-identical files
(:mod:`brainaug.cohort.duplicates`). A re-exported copy (same voxels, new header
or file name; another format; a re-sliced copy) passes that check but leads to
the same preprocessed volume. Here, when the volumes are stacked, two
*different* subjects are refused when

- their scans held identical voxels as loaded (``voxel_hash`` from
  preprocessing: exact copies, whatever the header), or
- their preprocessed volumes are near-identical: the Pearson correlation of
  their deviations from the cohort's mean volume exceeds a threshold
  (``preprocess.duplicate_correlation``).

Why deviations from the mean: every registered brain looks like the template,
so whole volumes of different subjects correlate at 0.99 (the embedded cohort:
median 0.991, max 0.996 at 32^3). What tells subjects apart is how each differs
from the average brain; those deviations correlate at most 0.72 between
different subjects of the embedded cohort, and exactly 1 for a copy.

Cost: volumes are block-averaged to at most 32^3 (a copy stays a copy at half
resolution), standardized, and compared by one matrix product in row chunks:
2,000 scans are a 2,000 x 32,768 float32 matrix (262 MB) and seconds of BLAS.
Repeated sessions of one subject are never compared with each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["DuplicateSubjectsError", "identical_scans", "near_duplicate_pairs", "check_duplicate_subjects"]

#: Volumes larger than this per axis are block-averaged down to it before comparing.
COMPARE_SIZE = 32

#: At most this many pairs are listed in one message.
_MAX_LISTED = 10


class DuplicateSubjectsError(ValueError):
    """Two different subjects hold the same (or a near-identical) scan."""


def identical_scans(hashes: Sequence[str], subjects: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of different subjects whose voxel hashes are equal.

    Empty hashes (a QC row from before hashing existed) are skipped.
    """
    first: dict[str, list[int]] = {}
    pairs = []
    for j, digest in enumerate(hashes):
        if not digest or digest != digest:  # empty or NaN
            continue
        for i in first.get(digest, []):
            if subjects[i] != subjects[j]:
                pairs.append((i, j))
                break
        first.setdefault(digest, []).append(j)
    return pairs


def _reduce(volumes: np.ndarray, rows: slice) -> np.ndarray:
    """Rows of ``volumes`` (N, S, S, S), block-averaged to at most COMPARE_SIZE^3, flattened, float64."""
    block = np.asarray(volumes[rows], dtype=np.float64)
    size = block.shape[1]
    factor = max(1, size // COMPARE_SIZE)
    if factor > 1:
        n, s = block.shape[0], size // factor
        block = block[:, : s * factor, : s * factor, : s * factor]
        block = block.reshape(n, s, factor, s, factor, s, factor).mean(axis=(2, 4, 6))
    return block.reshape(block.shape[0], -1)


def near_duplicate_pairs(
    volumes: np.ndarray, subjects: Sequence[str], threshold: float, chunk: int = 128
) -> list[tuple[int, int, float]]:
    """Pairs of different subjects whose volumes' deviations from the mean correlate above ``threshold``.

    Args:
        volumes: (N, S, S, S) preprocessed volumes (a memory map is read in chunks).
        subjects: subject of each volume.
        threshold: Pearson correlation above which two volumes are the same scan.
        chunk: volumes read and compared at a time.

    Returns:
        ``(i, j, r)`` with ``i < j``, sorted by decreasing ``r``.
    """
    n = int(volumes.shape[0])
    if n < 2:
        return []
    starts = range(0, n, chunk)
    mean = None
    for s in starts:
        part = _reduce(volumes, slice(s, s + chunk)).sum(axis=0)
        mean = part if mean is None else mean + part
    mean /= n
    z = np.empty((n, mean.size), dtype=np.float32)
    for s in starts:
        dev = _reduce(volumes, slice(s, s + chunk)) - mean
        dev -= dev.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(dev, axis=1, keepdims=True)
        # A volume equal to the mean has no deviation to compare; voxel hashes catch exact copies.
        z[s: s + chunk] = np.where(norm > 0, dev / np.where(norm > 0, norm, 1.0), 0.0)
    subjects = np.asarray([str(s) for s in subjects])
    pairs = []
    for s in starts:
        r = z[s: s + chunk] @ z.T
        rows, cols = np.nonzero(r > threshold)
        for i, j in zip(rows + s, cols):
            if i < j and subjects[i] != subjects[j]:
                pairs.append((int(i), int(j), float(r[i - s, j])))
    return sorted(pairs, key=lambda p: -p[2])


def check_duplicate_subjects(
    volumes: np.ndarray,
    scan_ids: Sequence[str],
    subjects: Sequence[str],
    threshold: float,
    hashes: Sequence[str] | None = None,
) -> None:
    """Refuse two different subjects holding one scan, naming both scans and subjects.

    Args:
        volumes: (N, S, S, S) preprocessed volumes, rows as ``scan_ids``.
        scan_ids, subjects: per row.
        threshold: ``preprocess.duplicate_correlation``.
        hashes: per-row voxel hash of the input scan (from preprocessing), or ``None``.

    Raises:
        DuplicateSubjectsError: listing each pair with its evidence.
    """
    lines = []
    identical = identical_scans(hashes or [], subjects)
    for i, j in identical:
        lines.append(
            f"  {scan_ids[i]} (subject {subjects[i]!r}) and {scan_ids[j]} (subject {subjects[j]!r}): "
            "identical voxels in the input files"
        )
    for i, j, r in near_duplicate_pairs(volumes, subjects, threshold):
        if (i, j) in identical:
            continue
        lines.append(
            f"  {scan_ids[i]} (subject {subjects[i]!r}) and {scan_ids[j]} (subject {subjects[j]!r}): "
            f"preprocessed volumes correlate at r = {r:.4f}"
        )
    if lines:
        more = f"\n  ... and {len(lines) - _MAX_LISTED} more" if len(lines) > _MAX_LISTED else ""
        raise DuplicateSubjectsError(
            f"{len(lines)} pair(s) of different subjects hold the same scan (preprocess.duplicate_correlation "
            f"= {threshold}; correlation of each volume's deviation from the cohort mean):\n"
            + "\n".join(lines[:_MAX_LISTED]) + more
            + "\nOne brain under two subjects can sit in a training and a test fold. Remove the copy from the "
            "cohort, or give both the same subject_id if they are sessions of one subject."
        )
