"""Subject-level cross-validation folds, and the checks that keep them leak-free.

Scans of one subject are near-duplicates; if one session trains and another
tests, accuracy is inflated. So folds are made on subjects, and every scan
follows its subject (:func:`scans_for`). Each outer fold has a test set; the
remaining subjects are split into train and a stratified validation share
(model selection, early stopping). The GAN of fold k must see train subjects
only; :func:`check_splits` is what the workflow runs before reporting.

Repeated cross-validation (``cv.repeats``) reshuffles the subjects into new
folds r times: one ``splits.json`` lists every (repeat, fold), and repeat r's
seed is :func:`repeat_seed` of the configured seed. Repeat 0 keeps the
configured seed itself, so a one-repeat run has the folds (and, downstream, the
classifier and GAN seeds) it had before repeats existed.

Stratification uses one diagnosis per subject: the first session's (see
:func:`brainaug.cohort.table.subject_table`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from brainaug.cohort.table import natural_key, subject_table
from brainaug.io.atomic import atomic_output
from brainaug.leakage import LeakageError

__all__ = [
    "LeakageError",
    "fold_dir",
    "fold_keys",
    "fold_roles",
    "fold_seed",
    "make_splits",
    "check_splits",
    "fold_label",
    "write_splits",
    "read_splits",
    "repeat_seed",
    "scans_for",
]

_ROLES = ("train", "val", "test")


def _sorted(subjects: Iterable[str]) -> list[str]:
    return sorted((str(s) for s in subjects), key=natural_key)


def fold_seed(seed: int, fold: int) -> int:
    """Independent, reproducible 32-bit seed per fold (not ``seed + fold``, which collides across seeds).

    The one derivation for every per-fold seed: the validation split here, the
    classifier (which keeps 31 bits of it) and anything added later.
    """
    return int(np.random.SeedSequence([int(seed), int(fold)]).generate_state(1)[0])


def repeat_seed(seed: int, repeat: int) -> int:
    """The base seed of cross-validation repeat ``repeat``, for splits, classifiers and GANs alike.

    Repeat 0 returns ``seed`` unchanged, so a one-repeat run reproduces the folds and
    seeds of a run made before repeats existed. Repeat r > 0 takes 31 bits of the r-th
    child of ``SeedSequence(seed)`` (independent of :func:`fold_seed`'s ``[seed, fold]``
    entropy, and small enough for every RNG that takes it). Each caller passes its own
    configured seed (``cv.seed``, ``classifier.seed``, ``gan.seed``) and then derives
    per-fold seeds from the result exactly as for repeat 0.

    Raises:
        ValueError: a negative seed or repeat.
    """
    seed, repeat = int(seed), int(repeat)
    if seed < 0 or repeat < 0:
        raise ValueError(f"seed and repeat must be >= 0, got seed={seed}, repeat={repeat}")
    if repeat == 0:
        return seed
    child = np.random.SeedSequence(seed, spawn_key=(repeat,))
    return int(child.generate_state(1)[0]) % (2**31)


def _validation_split(
    subjects: np.ndarray, labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Stratified (train, val) split of the non-test subjects of one fold.

    Every class with at least 2 subjects gets at least one validation and one
    training subject; a class with a single subject keeps it for training.
    """
    counts = Counter(labels.tolist())
    eligible = np.array([counts[y] >= 2 for y in labels])
    n_classes = sum(1 for c in counts.values() if c >= 2)
    pool, pool_labels = subjects[eligible], labels[eligible]
    n_val = max(int(round(val_fraction * len(subjects))), n_classes)
    n_val = min(n_val, len(pool) - n_classes)
    if n_classes == 0 or n_val < 1:
        return _sorted(subjects), []
    train, val = train_test_split(
        pool, test_size=n_val, stratify=pool_labels if n_classes > 1 else None, random_state=seed
    )
    return _sorted(list(train) + list(subjects[~eligible])), _sorted(val)


def make_splits(
    cohort: pd.DataFrame,
    n_folds: int = 6,
    val_fraction: float = 0.2,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    repeats: int = 1,
) -> dict:
    """Make subject-level, diagnosis-stratified outer folds with a validation share, ``repeats`` times.

    Outer folds: scikit-learn's ``StratifiedGroupKFold(shuffle=True,
    random_state=seed)`` on the subject table (one row per subject, so each
    group is one subject): every subject is in exactly one test fold, and the
    greedy assignment spreads each class evenly (floor or ceil of class size /
    n_folds per test fold in our tests), so with at least ``n_folds`` subjects
    per class every test fold holds every class. Inside fold k,
    ``train_test_split`` stratified by diagnosis takes
    ``round(val_fraction * n)`` of the n non-test subjects (at least one per
    class) as validation, seeded from ``(seed, k)``. Repeat r does the same with
    ``repeat_seed(seed, r)`` in place of ``seed`` (repeat 0: ``seed`` itself).

    Args:
        cohort: cohort table (``subject_id``, ``session_id``, ``scan_id``,
            ``diagnosis``, ``label``).
        n_folds: outer folds (>= 2).
        val_fraction: share of non-test subjects used for validation, in (0, 1).
        seed: makes the splits reproducible.
        classes: class names in label order; default: from the cohort's
            (label, diagnosis) pairs.
        repeats: independent reshuffles of the subjects into ``n_folds`` folds (>= 1).

    Returns:
        The ``splits.json`` dict: ``classes``, ``seed``, ``n_folds``,
        ``val_fraction``, ``repeats``, ``repeat_seeds`` (the seed of each
        repeat), ``folds`` (list of ``{"repeat", "fold", "train", "val",
        "test"}`` in repeat then fold order, subject IDs sorted).

    Raises:
        ValueError: bad arguments, or a class with fewer than ``n_folds`` subjects.
    """
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    missing = [c for c in ("subject_id", "scan_id", "diagnosis", "label") if c not in cohort.columns]
    if missing:
        raise ValueError(f"cohort lacks columns {missing}; columns found: {list(cohort.columns)}")
    if cohort.empty:
        raise ValueError("cohort is empty")
    subjects = subject_table(cohort)
    if classes is None:
        pairs = subjects[["label", "diagnosis"]].drop_duplicates().sort_values("label")
        if pairs["label"].tolist() != list(range(len(pairs))):
            raise ValueError(
                f"Cannot infer classes from labels {pairs['label'].tolist()}; pass classes explicitly"
            )
        classes = pairs["diagnosis"].tolist()
    classes = [str(c) for c in classes]
    counts = subjects["label"].value_counts()
    for label, name in enumerate(classes):
        n = int(counts.get(label, 0))
        if n < n_folds:
            raise ValueError(
                f"Class {name!r} has {n} subjects; {n_folds} folds need at least {n_folds} "
                "subjects per class (lower cv.n_folds or add subjects)"
            )

    ids = subjects["subject_id"].to_numpy()
    labels = subjects["label"].to_numpy()
    seeds = [repeat_seed(seed, r) for r in range(int(repeats))]
    folds = []
    for r, split_seed in enumerate(seeds):
        outer = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=split_seed)
        for k, (rest_idx, test_idx) in enumerate(outer.split(ids, labels, groups=ids)):
            train, val = _validation_split(ids[rest_idx], labels[rest_idx], val_fraction, fold_seed(split_seed, k))
            folds.append({"repeat": r, "fold": k, "train": train, "val": val, "test": _sorted(ids[test_idx])})
    return {
        "classes": classes,
        "seed": int(seed),
        "n_folds": int(n_folds),
        "val_fraction": float(val_fraction),
        "repeats": int(repeats),
        "repeat_seeds": seeds,
        "folds": folds,
    }


def fold_label(repeat: int, fold: int, repeats: int) -> str:
    """``"Fold k"``, or ``"Repeat r fold k"`` when there is more than one repeat.

    Why: messages of a one-repeat run read as they did before repeats existed,
    and a repeated run names the repeat a problem is in.
    """
    return f"Repeat {int(repeat)} fold {int(fold)}" if repeats > 1 else f"Fold {int(fold)}"


def check_splits(splits: dict, cohort: pd.DataFrame) -> None:
    """Refuse splits that leak a subject across roles or miss one, in every repeat.

    Args:
        splits: the ``splits.json`` dict (with or without ``repeats``).
        cohort: the cohort table the splits must cover.

    Raises:
        LeakageError: a subject in two roles of one fold (or twice in one
            role), a subject not in exactly one test fold of a repeat, a subject
            that is not in the cohort, or a cohort subject missing from a fold.
    """
    known = set(cohort["subject_id"].astype(str))
    folds = splits.get("folds") or []
    if not folds:
        raise LeakageError("splits have no folds")
    repeats = sorted({int(fold.get("repeat", 0)) for fold in folds})
    test_count: dict[int, Counter[str]] = {r: Counter() for r in repeats}
    for fold in folds:
        r = int(fold.get("repeat", 0))
        where = fold_label(r, fold.get("fold"), len(repeats))
        seen: dict[str, str] = {}
        for role in _ROLES:
            for subject in fold.get(role, []):
                subject = str(subject)
                if subject in seen:
                    raise LeakageError(
                        f"{where}: subject {subject!r} is in both {seen[subject]!r} and {role!r}"
                        if seen[subject] != role
                        else f"{where}: subject {subject!r} is listed twice in {role!r}"
                    )
                seen[subject] = role
        unknown = _sorted(set(seen) - known)
        if unknown:
            raise LeakageError(f"{where}: subjects not in the cohort: {unknown[:10]}")
        absent = _sorted(known - set(seen))
        if absent:
            raise LeakageError(f"{where}: cohort subjects in no role: {absent[:10]}")
        test_count[r].update(str(s) for s in fold.get("test", []))
    for r, counts in test_count.items():
        wrong = {s: counts.get(s, 0) for s in _sorted(known) if counts.get(s, 0) != 1}
        if wrong:
            listed = dict(list(wrong.items())[:10])
            which = f" of repeat {r}" if len(repeats) > 1 else ""
            raise LeakageError(f"Subjects not in exactly one test fold{which} (subject: test folds): {listed}")


def write_splits(splits: dict, path: str | Path) -> None:
    """Write ``splits.json`` atomically (temp file, then ``os.replace``)."""
    with atomic_output(path, suffix=".tmp") as tmp, open(tmp, "w", encoding="utf-8") as handle:
        json.dump(splits, handle, indent=2)
        handle.write("\n")


def read_splits(path: str | Path) -> dict:
    """Read ``splits.json``, checking its structure (not its leakage: see :func:`check_splits`).

    A file written before repeats existed (no ``repeats`` key, folds without
    ``repeat``) is read as one repeat: every fold gets ``repeat`` 0, ``repeats``
    becomes 1 and ``repeat_seeds`` ``[seed]``, which is what such a file meant.

    Raises:
        ValueError: an unreadable file, missing keys, or a (repeat, fold) listed twice or
            outside ``range(repeats) x range(n_folds)`` (named with the file).
    """
    path = Path(path)
    try:
        splits = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"Cannot read splits file {path}: {err}") from err
    missing = [k for k in ("classes", "seed", "n_folds", "folds") if k not in splits]
    if missing:
        raise ValueError(f"{path} is not a splits file: missing keys {missing}")
    for fold in splits["folds"]:
        absent = [k for k in ("fold", *_ROLES) if k not in fold]
        if absent:
            raise ValueError(f"{path}: fold {fold.get('fold')} lacks keys {absent}")
    if "repeats" not in splits:
        if any("repeat" in fold for fold in splits["folds"]):
            raise ValueError(f"{path}: folds name a repeat but the file has no 'repeats' key")
        splits["repeats"] = 1
        splits["repeat_seeds"] = [splits["seed"]]
        for fold in splits["folds"]:
            fold["repeat"] = 0
    repeats = splits["repeats"]
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"{path}: 'repeats' must be an integer >= 1, got {repeats!r}")
    lacking = [fold.get("fold") for fold in splits["folds"] if "repeat" not in fold]
    if lacking:
        raise ValueError(f"{path}: folds {lacking} lack the key 'repeat' although the file lists {repeats} repeats")
    n_folds = int(splits["n_folds"])
    seen: set[tuple[int, int]] = set()
    for fold in splits["folds"]:
        key = (int(fold["repeat"]), int(fold["fold"]))
        if not (0 <= key[0] < repeats and 0 <= key[1] < n_folds):
            raise ValueError(
                f"{path}: fold {key[1]} of repeat {key[0]} is outside repeats 0..{repeats - 1}, folds 0..{n_folds - 1}"
            )
        if key in seen:
            raise ValueError(f"{path}: fold {key[1]} of repeat {key[0]} is listed twice")
        seen.add(key)
    return splits


def fold_dir(repeat: int, fold: int) -> str:
    """The path part of one (repeat, fold) under ``results/gan`` and ``results/classify/{strategy}``.

    ``repeat{r}/fold{k}``, the scheme the workflow's rules use (``common.smk``'s ``RUN``).
    """
    return f"repeat{int(repeat)}/fold{int(fold)}"


def fold_keys(splits: dict) -> list[tuple[int, int]]:
    """Every ``(repeat, fold)`` of a read splits file, in file order (repeat, then fold)."""
    return [(int(f.get("repeat", 0)), int(f["fold"])) for f in splits["folds"]]


def fold_roles(splits: dict, fold: int, source: str | Path, repeat: int = 0) -> dict[str, set[str]]:
    """The subject IDs of each role (``train``, ``val``, ``test``) of one fold of a read splits file.

    Args:
        splits: the dict :func:`read_splits` returned.
        fold: fold number (within its repeat).
        source: the splits file, named in the error.
        repeat: cross-validation repeat (0 for a file without repeats).

    Raises:
        ValueError: the splits have no such (repeat, fold).
    """
    for entry in splits["folds"]:
        if int(entry["fold"]) == int(fold) and int(entry.get("repeat", 0)) == int(repeat):
            return {role: {str(s) for s in entry[role]} for role in _ROLES}
    if int(splits.get("repeats", 1)) == 1 and int(repeat) == 0:
        raise ValueError(f"{source} has no fold {fold}; folds are {[e.get('fold') for e in splits['folds']]}")
    raise ValueError(f"{source} has no fold {fold} of repeat {repeat}; it holds (repeat, fold) {fold_keys(splits)}")


def scans_for(cohort: pd.DataFrame, subjects: Iterable[str]) -> pd.DataFrame:
    """All scans (cohort rows, in cohort order) of the given subjects.

    Raises:
        ValueError: a subject that is not in the cohort (a stale splits file).
    """
    wanted = {str(s) for s in subjects}
    ids = cohort["subject_id"].astype(str)
    unknown = _sorted(wanted - set(ids))
    if unknown:
        raise ValueError(f"Subjects not in the cohort: {unknown[:10]}")
    return cohort.loc[ids.isin(wanted).to_numpy()]
