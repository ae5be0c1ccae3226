"""All preprocessed volumes stacked in one array, for fast training.

Training loops sample thousands of batches; reading hundreds of small NIfTI
files each time would dominate a CPU run. One ``.npy`` file opened with
``mmap_mode="r"`` costs nothing to open and pages in only what is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from brainaug.duplicates import check_duplicate_subjects
from brainaug.io.atomic import atomic_output

__all__ = ["build_dataset", "load_dataset", "select_subjects", "INDEX_COLUMNS"]

INDEX_COLUMNS = ["scan_id", "subject_id", "diagnosis", "label"]


def build_dataset(
    cohort: pd.DataFrame,
    volume_paths: dict[str, str | Path],
    image_size: int,
    out_volumes: str | Path,
    out_index: str | Path,
    expected_affine: np.ndarray | None = None,
    exclude: Sequence[str] = (),
    duplicate_correlation: float | None = None,
    voxel_hashes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Stack every preprocessed scan of the cohort into ``(N, S, S, S)`` float32.

    Args:
        cohort: the cohort table (scan_id, subject_id, diagnosis, label, ...).
        volume_paths: scan_id -> preprocessed NIfTI.
        image_size: S; a volume of another shape is an error naming its file.
        out_volumes, out_index: destinations (written atomically).
        expected_affine: if given, every volume's affine must match it (a file
            from a run with other settings would otherwise slip in).
        exclude: scan IDs left out (e.g. QC outliers).
        duplicate_correlation: if given, two different subjects whose volumes
            are near-identical (or whose ``voxel_hashes`` match) stop the build,
            before anything is written (:func:`brainaug.duplicates.check_duplicate_subjects`).
        voxel_hashes: scan_id -> hash of the input scan's voxels (QC rows).

    Returns:
        The index table, rows in the order of the array.

    Raises:
        ValueError: a volume of the wrong shape or grid, or with NaN/Inf.
        DuplicateSubjectsError: one scan under two subjects.
    """
    rows = cohort[~cohort["scan_id"].isin(list(exclude))].sort_values("scan_id").reset_index(drop=True)
    shape = (len(rows), image_size, image_size, image_size)
    with atomic_output(out_volumes) as tmp:
        stack = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        for i, scan_id in enumerate(rows["scan_id"]):
            path = Path(volume_paths[scan_id])
            image = nib.load(str(path))
            data = np.asarray(image.dataobj, dtype=np.float32)
            if data.shape != shape[1:]:
                raise ValueError(f"Expected a {shape[1:]} volume in {path}, got shape {data.shape}")
            if expected_affine is not None and not np.allclose(image.affine, expected_affine, atol=1e-3):
                raise ValueError(f"{path} is not on the template grid of image_size {image_size} (affine differs)")
            if not np.isfinite(data).all():
                raise ValueError(f"{path} contains NaN or Inf voxels")
            stack[i] = data
        stack.flush()
        if duplicate_correlation is not None:
            hashes = [str((voxel_hashes or {}).get(scan, "")) for scan in rows["scan_id"]]
            check_duplicate_subjects(
                stack, list(rows["scan_id"]), list(rows["subject_id"]), duplicate_correlation, hashes
            )
        del stack
    index = rows[INDEX_COLUMNS].copy()
    index["label"] = index["label"].astype(int)
    with atomic_output(out_index) as tmp:
        index.to_csv(tmp, sep="\t", index=False)
    return index


def load_dataset(volumes: str | Path, index: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Open the stacked volumes read-only (memory-mapped) with their index."""
    array = np.load(str(volumes), mmap_mode="r")
    table = pd.read_csv(index, sep="\t", dtype={"scan_id": str, "subject_id": str, "diagnosis": str})
    if len(table) != array.shape[0]:
        raise ValueError(f"{index} has {len(table)} rows but {volumes} holds {array.shape[0]} volumes")
    return array, table


def select_subjects(
    array: np.ndarray, index: pd.DataFrame, subjects: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Every scan of the given subjects: volumes (copied into memory), labels, index rows."""
    mask = index["subject_id"].isin(list(subjects)).to_numpy()
    rows = index[mask].reset_index(drop=True)
    return np.ascontiguousarray(array[mask]), rows["label"].to_numpy(dtype=np.int64), rows
