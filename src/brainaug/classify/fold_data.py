"""The data of one (strategy, repeat, fold): the fold's real scans by role and its synthetic pool,
read once and checked for leakage before any training starts.

Validation and test sets are real scans of subjects disjoint from the training
subjects; the fold's synthetic volumes come from a GAN trained on the fold's
training subjects only. Both are checked here from the recorded IDs, and a
failure raises :class:`brainaug.leakage.LeakageError`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainaug.dataset import load_dataset
from brainaug.gan.synthesize import load_synthetic
from brainaug.leakage import check_disjoint, check_gan_subjects
from brainaug.splits import fold_roles, fold_seed, read_splits, repeat_seed
from brainaug.template import grid_spacing

__all__ = ["ROLES", "FoldData", "classifier_seed", "load_synthetic_pool", "read_fold"]

ROLES = ("train", "val", "test")


@dataclass(frozen=True)
class FoldData:
    """One fold's real scans.

    Attributes:
        classes: class names in label order (from ``splits.json``).
        subjects: role -> subject IDs from ``splits.json``.
        rows: role -> the role's rows of ``index.tsv``.
        x: role -> float32 volumes ``(N, S, S, S)`` (copied out of the memory map).
        y: role -> int64 labels ``(N,)``.
        image_size: S.
        spacing_mm: voxel size (mm) per axis (x, y, z): the template grid of S^3, on which
            the dataset rule put every volume (:func:`brainaug.template.grid_spacing`).
    """

    classes: list[str]
    subjects: dict[str, set[str]]
    rows: dict[str, pd.DataFrame]
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    image_size: int
    spacing_mm: tuple[float, float, float]


def classifier_seed(base_seed: int, fold: int, repeat: int = 0) -> int:
    """Seed of one (repeat, fold)'s classifier; the same for every strategy, so strategies differ only by data.

    31 bits of :func:`brainaug.splits.fold_seed` of the repeat's base seed
    (:func:`brainaug.splits.repeat_seed`; ``base_seed`` itself for repeat 0, so
    repeat 0 keeps the seeds the classifier has always used).
    """
    return fold_seed(repeat_seed(base_seed, repeat), fold) % (2**31)


def read_fold(dataset_dir: str | Path, splits_path: str | Path, fold: int, repeat: int = 0) -> FoldData:
    """Read fold ``fold`` of repeat ``repeat``: its real scans from ``{dataset_dir}/volumes.npy`` and ``index.tsv``.

    Raises:
        LeakageError: a subject or scan in two roles.
        ValueError: a (repeat, fold) that is not in ``splits_path``, an index whose labels do not
            follow the class order, or a role without scans.
    """
    dataset_dir = Path(dataset_dir)
    splits = read_splits(splits_path)
    classes = [str(c) for c in splits["classes"]]
    roles = fold_roles(splits, fold, splits_path, repeat=repeat)
    check_disjoint(roles, "Subjects")

    index_path = dataset_dir / "index.tsv"
    volumes, index = load_dataset(dataset_dir / "volumes.npy", index_path)
    index = index.reset_index(drop=True)
    known = [c for c in index["diagnosis"].unique() if c not in classes]
    if known:
        raise ValueError(f"{index_path} has diagnoses {known} not in classes {classes}")
    expected = index["diagnosis"].map({c: i for i, c in enumerate(classes)})
    if not (expected.to_numpy() == index["label"].to_numpy()).all():
        raise ValueError(f"{index_path}: 'label' does not match the class order {classes}")
    rows = {role: index[index["subject_id"].isin(roles[role])] for role in roles}
    for role, role_rows in rows.items():
        if role_rows.empty:
            raise ValueError(f"Fold {fold} of repeat {repeat} has no scans for its {role} subjects in {index_path}")
    check_disjoint({r: set(role_rows["scan_id"]) for r, role_rows in rows.items()}, "Scans")
    x = {role: np.asarray(volumes[rows[role].index.to_numpy()], dtype=np.float32) for role in ROLES}
    y = {role: rows[role]["label"].to_numpy(dtype=np.int64) for role in ROLES}
    size = int(volumes.shape[-1])
    return FoldData(classes, roles, rows, x, y, size, grid_spacing(size))


def load_synthetic_pool(
    npz_path: str | Path, classes: Sequence[str], image_size: int, subjects: dict[str, set[str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Load the fold's synthetic pool and check the GAN saw the fold's training subjects only.

    The GAN's subjects are read from the ``metrics.json`` beside the pool, when there is one.
    """
    try:
        volumes, labels, pool_classes = load_synthetic(npz_path)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(
            f"Cannot read synthetic pool {npz_path} (expected arrays 'volumes', 'labels', 'classes'): {err}"
        ) from err
    volumes = np.asarray(volumes, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if pool_classes != list(classes):
        raise ValueError(f"{npz_path} has classes {pool_classes}, expected {list(classes)}")
    if volumes.ndim != 4 or volumes.shape[1:] != (image_size,) * 3 or len(volumes) != len(labels):
        raise ValueError(
            f"{npz_path}: expected volumes (M, {image_size}, {image_size}, {image_size}) and M labels, "
            f"got volumes {volumes.shape} and {labels.shape} labels"
        )
    metrics_path = Path(npz_path).parent / "metrics.json"
    if metrics_path.is_file():
        gan_subjects = set(map(str, json.loads(metrics_path.read_text()).get("train_subjects", [])))
        check_gan_subjects(gan_subjects, subjects, npz_path)
    return volumes, labels
