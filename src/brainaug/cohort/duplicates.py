"""One scan under two subjects: refused before it can sit in a training and a test fold.

Subject-level folds keep a subject's scans together; they cannot keep apart two
"subjects" who are the same brain. Here, at the cohort stage, we refuse the
cheap-to-see forms: two rows of different subjects naming the same file, or
byte-identical copies of one file. Files are grouped by size first (a stat),
then by a few sampled blocks, and only the files still colliding are hashed
whole, so a cohort of 2,000 distinct scans costs about one stat and a few
small reads per file. Re-exported copies (same voxels, new header) and
near-copies are found later, on the preprocessed volumes
(:mod:`brainaug.duplicates`).

Repeated sessions of one subject may share content (a re-listed baseline); only
different subjects are refused.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Sequence

__all__ = ["DuplicateImageError", "find_shared_images", "check_shared_images"]

#: Blocks read at evenly spaced offsets to tell same-sized files apart before hashing them whole.
_SAMPLE_BLOCKS = 16
_BLOCK = 4096

#: At most this many pairs are listed in one message.
_MAX_LISTED = 10


class DuplicateImageError(ValueError):
    """Two different subjects name the same image file or identical copies of it."""


def _sample_digest(path: str, size: int) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for k in range(_SAMPLE_BLOCKS):
            handle.seek(size * k // _SAMPLE_BLOCKS)
            digest.update(handle.read(_BLOCK))
    return digest.digest()


def _full_digest(path: str) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def _refine(groups: list[list[int]], key: Callable[[int], object]) -> list[list[int]]:
    """Split each group of indices by ``key``; keep only groups still holding several files."""
    out = []
    for group in groups:
        by_key: dict[object, list[int]] = defaultdict(list)
        for i in group:
            by_key[key(i)].append(i)
        out.extend(g for g in by_key.values() if len(g) > 1)
    return out


def find_shared_images(images: Sequence[str], subjects: Sequence[str]) -> list[tuple[int, int, str]]:
    """Pairs of rows of different subjects whose images are one file or byte-identical.

    Args:
        images: resolved image paths (files, or DICOM folders: compared by path only).
        subjects: subject of each row.

    Returns:
        ``(first_row, later_row, how)`` with ``how`` ``"same file"`` or ``"identical bytes"``,
        one pair per later row (paired with the first row of another subject).
    """
    pairs: list[tuple[int, int, str]] = []

    def add_pairs(groups: list[list[int]], how: str) -> None:
        for group in groups:
            for i in group[1:]:
                other = next((j for j in group if j != i and subjects[j] != subjects[i]), None)
                if other is not None and not any(p[1] == i for p in pairs):
                    pairs.append((min(other, i), max(other, i), how))

    by_path: dict[str, list[int]] = defaultdict(list)
    for i, image in enumerate(images):
        by_path[image].append(i)
    add_pairs([g for g in by_path.values() if len(g) > 1], "same file")

    # One representative row per distinct file; directories (DICOM series) are not hashed.
    files = [g[0] for g in by_path.values() if os.path.isfile(images[g[0]])]
    sizes = {i: os.path.getsize(images[i]) for i in files}
    groups = _refine([files], lambda i: sizes[i])
    groups = _refine(groups, lambda i: _sample_digest(images[i], sizes[i]))
    groups = _refine(groups, lambda i: _full_digest(images[i]))
    # Expand each file to every row naming it, so subjects are compared row by row.
    add_pairs([[r for i in g for r in by_path[images[i]]] for g in groups], "identical bytes")
    return sorted(pairs)


def check_shared_images(images: Sequence[str], subjects: Sequence[str], origins: Sequence[str]) -> None:
    """Raise :class:`DuplicateImageError` naming both rows, subjects and files of each shared scan.

    Args:
        images: resolved image paths, one per row.
        subjects: subject of each row.
        origins: where each row came from ("line 3 of manifest.tsv", a BIDS file).
    """
    pairs = find_shared_images(images, subjects)
    if not pairs:
        return
    def where(i: int, with_file: bool) -> str:
        file = f" {images[i]}" if with_file and images[i] not in origins[i] else ""
        return f"{origins[i]} (subject {subjects[i]!r}{',' + file if file else ''})"

    lines = []
    for i, j, how in pairs[:_MAX_LISTED]:
        if how == "same file":
            lines.append(f"  {where(i, False)} and {where(j, False)} name the same file {images[i]}")
        else:
            lines.append(f"  {where(i, True)} and {where(j, True)} are byte-identical files")
    more = f"\n  ... and {len(pairs) - _MAX_LISTED} more" if len(pairs) > _MAX_LISTED else ""
    raise DuplicateImageError(
        f"{len(pairs)} scan(s) appear under two different subjects; one brain in two subjects can sit in a "
        f"training and a test fold:\n" + "\n".join(lines) + more + "\nRemove the wrong row, or give both rows "
        "the same subject_id if they are sessions of one subject."
    )
