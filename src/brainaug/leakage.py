"""Subject leakage: the one exception type and the checks every step shares.

An augmentation study is only meaningful if neither the classifier nor the GAN
that fed it ever saw the fold's validation or test subjects: a GAN trained on
test subjects hands their anatomy to the classifier through the synthetic set.
The same rules are checked at three points, with the same code: when the folds
are made (:func:`brainaug.splits.check_splits`), when a classifier is trained
(:func:`check_disjoint`, :func:`check_gan_subjects`), and before the table is
built, on the subject lists every training step recorded in its
``metrics.json`` (:func:`check_leakage`).

Below ``gan``, ``classify`` and ``results``; it imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["LeakageError", "check_disjoint", "check_gan_subjects", "check_leakage", "gan_subject_leaks", "overlaps"]


class LeakageError(RuntimeError):
    """A subject's data reached two roles of a fold (or a GAN saw held-out subjects)."""


def overlaps(roles: Mapping[str, set[str]]) -> list[tuple[str, str, set[str]]]:
    """Every pair of roles that share members, as ``(a, b, shared)`` in the roles' order.

    Args:
        roles: role name -> members (subject or scan IDs), e.g. train/val/test.
    """
    names = list(roles)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = roles[a] & roles[b]
            if common:
                pairs.append((a, b, common))
    return pairs


def check_disjoint(roles: Mapping[str, set[str]], what: str) -> None:
    """Raise on the first pair of roles that share members (``what``: "Subjects", "Scans")."""
    for a, b, common in overlaps(roles):
        raise LeakageError(
            f"{what} appear in both {a} and {b}: {sorted(common)[:5]}" + (" ..." if len(common) > 5 else "")
        )


def gan_subject_leaks(gan_subjects: set[str], fold: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Which of the subjects a fold's GAN trained on it should not have seen.

    Args:
        gan_subjects: the GAN's recorded ``train_subjects``.
        fold: the fold's ``train``, ``val`` and ``test`` subject sets.

    Returns:
        ``{"test": ..., "val": ..., "outside": ...}``: held-out subjects, and subjects in
        no role of the fold (a GAN from another cohort or fold).
    """
    return {
        "test": gan_subjects & fold["test"],
        "val": gan_subjects & fold["val"],
        "outside": gan_subjects - fold["train"] - fold["val"] - fold["test"],
    }


def check_gan_subjects(gan_subjects: set[str], fold: Mapping[str, set[str]], source: Any) -> None:
    """Raise unless the GAN behind ``source`` (a synthetic pool) trained on ``fold``'s training subjects only."""
    leaks = gan_subject_leaks(gan_subjects, fold)
    leaked = leaks["val"] | leaks["test"]
    if leaked:
        raise LeakageError(f"The GAN behind {source} trained on validation/test subjects {sorted(leaked)[:5]}")
    if leaks["outside"]:
        raise LeakageError(
            f"The GAN behind {source} trained on subjects outside this fold's training set: "
            f"{sorted(leaks['outside'])[:5]}"
        )


def _subjects(value: Any, where: str, key: str) -> set[str]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}: {key} must be a list of subject ids, got {value!r}")
    return {str(s) for s in value}


def _show(subjects: Iterable[str], limit: int = 10) -> str:
    s = sorted(subjects)
    more = f" (+{len(s) - limit} more)" if len(s) > limit else ""
    return ", ".join(s[:limit]) + more


def _fold_sets(splits: Mapping[str, Any]) -> dict[tuple[int, int], dict[str, set[str]]]:
    """``{(repeat, fold): {role: subjects}}``; a fold without ``repeat`` (an old file) is repeat 0."""
    folds = splits.get("folds") if isinstance(splits, Mapping) else None
    if not isinstance(folds, list) or not folds:
        raise ValueError(f"splits must be a dict with a non-empty 'folds' list (splits.json), got {type(splits).__name__}")
    out: dict[tuple[int, int], dict[str, set[str]]] = {}
    for i, f in enumerate(folds):
        if not isinstance(f, Mapping) or "fold" not in f:
            raise ValueError(f"splits.json folds[{i}] must be an object with 'fold', 'train', 'val', 'test'")
        key = (int(f.get("repeat", 0)), int(f["fold"]))
        out[key] = {part: _subjects(f.get(part), f"splits.json fold {key[1]} of repeat {key[0]}", part) for part in ("train", "val", "test")}
    return out


def _label(key: tuple[int, int], many: bool) -> str:
    """``"fold k"``, or ``"repeat r fold k"`` when the splits hold several repeats."""
    return f"repeat {key[0]} fold {key[1]}" if many else f"fold {key[1]}"


def check_leakage(
    splits: Mapping[str, Any],
    classify_metrics: Mapping[tuple[str, int, int], Mapping[str, Any]],
    gan_metrics: Mapping[tuple[int, int], Mapping[str, Any]],
) -> None:
    """Check every subject-level invariant of the cross-validation; raise if any fails.

    Checked, for each fold k of each repeat r of ``splits``:

    - splits.json itself: train, val and test are disjoint, and no subject is tested in two
      folds of one repeat (each repeat reshuffles the subjects, so across repeats it must be);
    - each classifier (strategy, r, k): its ``test_subjects`` and ``val_subjects`` equal the
      fold's, its ``train_subjects`` are a subset of the fold's train set (hence contain no
      val/test subject);
    - the GAN of (r, k): its ``train_subjects`` are a subset of the fold's train set (no val/test
      subject); a classifier that used synthetic data (``n_synthetic_train > 0``) needs the GAN's
      metrics of the same (r, k) to be checkable.

    Messages name the repeat only when the splits hold more than one.

    Args:
        splits: parsed ``results/splits.json`` (folds without ``repeat`` are repeat 0).
        classify_metrics: ``{(strategy, repeat, fold): parsed classifier metrics.json}``.
        gan_metrics: ``{(repeat, fold): parsed results/gan/repeat{r}/fold{k}/metrics.json}``;
            folds without a GAN may be absent.

    Raises:
        LeakageError: listing every violation, each naming the strategy (or GAN), fold and subjects.
        ValueError: malformed inputs (missing subject lists, a (repeat, fold) not in splits.json,
            a key that is not a (strategy, repeat, fold) or (repeat, fold) tuple).
    """
    folds = _fold_sets(splits)
    many = len({r for r, _ in folds}) > 1
    problems: list[str] = []

    tested_in: dict[tuple[int, str], int] = {}
    for key, f in sorted(folds.items()):
        for a, b, both in overlaps(f):
            problems.append(f"splits.json {_label(key, many)}: subjects in both {a} and {b}: {_show(both)}")
        r, k = key
        for s in f["test"]:
            if (r, s) in tested_in:
                which = f" of repeat {r}" if many else ""
                problems.append(f"splits.json: subject {s} is in the test sets of folds {tested_in[(r, s)]} and {k}{which}")
            tested_in.setdefault((r, s), k)

    for key, gm in sorted(gan_metrics.items()):
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"GAN metrics must be keyed by (repeat, fold), got {key!r}")
        key = (int(key[0]), int(key[1]))
        where = f"GAN {_label(key, many)}"
        if key not in folds:
            raise ValueError(f"{where}: metrics given for a fold that splits.json does not have ({sorted(folds)})")
        gan_train = _subjects(gm.get("train_subjects"), f"{where} metrics.json", "train_subjects")
        leaks = gan_subject_leaks(gan_train, folds[key])
        for part in ("test", "val"):
            if leaks[part]:
                problems.append(f"{where}: trained on {part} subjects {_show(leaks[part])}")
        if leaks["outside"]:
            problems.append(f"{where}: trained on subjects outside the fold's train set: {_show(leaks['outside'])}")
    gan_keys = {(int(r), int(k)) for r, k in gan_metrics}

    def _order(item: tuple[Any, Any]) -> tuple[str, int, int]:
        run = item[0]
        if not (isinstance(run, tuple) and len(run) == 3):
            raise ValueError(f"classifier metrics must be keyed by (strategy, repeat, fold), got {run!r}")
        return (str(run[0]), int(run[1]), int(run[2]))

    for run, m in sorted(classify_metrics.items(), key=_order):
        strategy, key = run[0], (int(run[1]), int(run[2]))
        where = f"classifier {strategy!r} {_label(key, many)}"
        if key not in folds:
            raise ValueError(f"{where}: fold {key[1]} of repeat {key[0]} is not in splits.json ({sorted(folds)})")
        f = folds[key]
        train = _subjects(m.get("train_subjects"), f"{where} metrics.json", "train_subjects")
        val = _subjects(m.get("val_subjects"), f"{where} metrics.json", "val_subjects")
        test = _subjects(m.get("test_subjects"), f"{where} metrics.json", "test_subjects")
        for name, got in (("test", test), ("val", val)):
            if got != f[name]:
                extra, lacking = got - f[name], f[name] - got
                problems.append(
                    f"{where}: {name} subjects differ from splits.json"
                    + (f"; not in the fold's {name} set: {_show(extra)}" if extra else "")
                    + (f"; missing: {_show(lacking)}" if lacking else "")
                )
        for part in ("test", "val"):
            leaked = train & f[part]
            if leaked:
                problems.append(f"{where}: {part} subjects in the training set: {_show(leaked)}")
        leaked = val & f["test"]
        if leaked:
            problems.append(f"{where}: test subjects used for validation: {_show(leaked)}")
        outside = train - f["train"] - f["val"] - f["test"]
        if outside:
            problems.append(f"{where}: trained on subjects outside the fold's train set: {_show(outside)}")
        n_syn = m.get("n_synthetic_train", 0) or 0
        if n_syn > 0 and key not in gan_keys:
            problems.append(
                f"{where}: used {n_syn} synthetic volumes but no GAN metrics for {_label(key, many)} were given, "
                "so the GAN's training subjects cannot be checked"
            )

    if problems:
        raise LeakageError("Subject leakage or inconsistent splits:\n- " + "\n- ".join(problems))
