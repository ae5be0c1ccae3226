"""The study's headline table: one row per augmentation strategy, mean and SD over folds.

Columns follow the paper first (strategy, validation accuracy, SD, test accuracy,
SD), then balanced accuracy, macro AUC and macro F1 on the test sets, then the
corrected resampled t-test (Nadeau & Bengio 2003) of test accuracy against the
baseline strategy (``standard``), paired by fold.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainaug.io import atomic_output
from brainaug.results.stats import corrected_resampled_ttest

__all__ = ["METRICS", "collect_metrics", "comparison_table", "format_table", "metrics_table", "write_table"]

#: Per-split scores every classifier ``metrics.json`` holds (under ``"val"`` and ``"test"``).
METRICS = ("accuracy", "balanced_accuracy", "auc_macro", "f1_macro")
_SUBJECT_KEYS = ("train_subjects", "val_subjects", "test_subjects")
_COUNT_KEYS = ("n_real_train", "n_synthetic_train")


def _strategy_names(strategies: Iterable[Any] | Mapping[str, Any]) -> list[str]:
    """Names from a list of str, of objects with ``.name`` (``brainaug.strategies.Strategy``), or a config dict."""
    if isinstance(strategies, Mapping):
        return [str(k) for k in strategies]
    names = []
    for s in strategies:
        name = s if isinstance(s, str) else getattr(s, "name", None)
        if not isinstance(name, str):
            raise TypeError(f"strategies must hold names (str) or Strategy objects, got {s!r}")
        names.append(name)
    if len(set(names)) != len(names):
        raise ValueError(f"strategies must be unique, got {names}")
    return names


def _score(value: Any, path: Path, key: str) -> float:
    if value is None:
        return float("nan")  # e.g. AUC undefined when a class is absent from a test set
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{path}: {key} must be a number or null, got {value!r}")
    return float(value)


def _read_metrics(path: Path, strategy: str, fold: int) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"Missing classifier metrics for strategy {strategy!r} fold {fold}: {path}")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    row: dict[str, Any] = {"strategy": strategy, "fold": fold}
    for split in ("val", "test"):
        part = m.get(split)
        if not isinstance(part, Mapping):
            raise ValueError(f"{path}: expected a {split!r} object with {list(METRICS)}, got {part!r}")
        for metric in METRICS:
            if metric not in part:
                raise ValueError(f"{path}: {split}.{metric} is missing (expected keys {list(METRICS)})")
            row[f"{split}_{metric}"] = _score(part[metric], path, f"{split}.{metric}")
    for key in _COUNT_KEYS:
        if key not in m:
            raise ValueError(f"{path}: {key} is missing")
        row[key] = int(m[key])
    for key in _SUBJECT_KEYS:
        if not isinstance(m.get(key), list):
            raise ValueError(f"{path}: {key} must be a list of subject ids, got {m.get(key)!r}")
        row[f"n_{key}"] = len(m[key])
    return row


def collect_metrics(
    classify_dir: str | os.PathLike[str], strategies: Iterable[Any] | Mapping[str, Any], n_folds: int
) -> pd.DataFrame:
    """Read ``{classify_dir}/{strategy}/fold{k}/metrics.json`` for every strategy and fold.

    Args:
        classify_dir: the ``results/classify`` folder.
        strategies: strategy names in config order (str, ``Strategy`` objects, or the config's strategies dict).
        n_folds: number of outer folds (k = 0 .. n_folds - 1).

    Returns:
        One row per (strategy, fold), in strategy then fold order, with columns ``strategy, fold``,
        ``{val,test}_{accuracy,balanced_accuracy,auc_macro,f1_macro}`` (NaN where a file has ``null``),
        ``n_real_train, n_synthetic_train, n_train_subjects, n_val_subjects, n_test_subjects``.

    Raises:
        FileNotFoundError: a metrics file is missing (named in the message).
        ValueError / TypeError: a file lacks a key or holds a wrong type (file and key named).
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 1:
        raise ValueError(f"n_folds must be a positive integer, got {n_folds!r}")
    names = _strategy_names(strategies)
    if not names:
        raise ValueError("strategies is empty: nothing to collect")
    root = Path(classify_dir)
    return metrics_table(
        {(name, k): root / name / f"fold{k}" / "metrics.json" for name in names for k in range(int(n_folds))}
    )


def metrics_table(runs: Mapping[tuple[str, int], str | os.PathLike[str]]) -> pd.DataFrame:
    """Read one ``metrics.json`` per (strategy, fold), from the paths given.

    Why: the workflow passes the files it declared as inputs, so a fold folder
    left over from an earlier config can never enter the table.

    Args:
        runs: ``(strategy, fold) -> metrics.json`` in the table's row order.

    Returns:
        The rows described in :func:`collect_metrics`.
    """
    if not runs:
        raise ValueError("runs is empty: nothing to collect")
    return pd.DataFrame([_read_metrics(Path(path), name, int(k)) for (name, k), path in runs.items()])


def comparison_table(
    per_fold: pd.DataFrame, baseline: str | None = "standard", strategies: Iterable[Any] | None = None
) -> pd.DataFrame:
    """Summarise per-fold metrics into the study's table (mean and SD over folds, t-test vs baseline).

    The t-test pairs each strategy's test accuracy with the baseline's on the same folds
    (``d_k = acc_strategy - acc_baseline``) and uses the baseline's mean numbers of real
    training and test *subjects* per fold as ``n_train`` / ``n_test`` (subjects are the
    independent units that the folds reshuffle; synthetic volumes do not add to the
    overlap between training sets).

    Args:
        per_fold: output of :func:`collect_metrics`.
        baseline: strategy to test against; ``None`` leaves ``t_vs_standard``/``p_vs_standard`` empty.
        strategies: row order; default the order of first appearance in ``per_fold`` (config order).

    Returns:
        Columns ``strategy, val_accuracy, val_accuracy_sd, test_accuracy, test_accuracy_sd,
        test_balanced_accuracy, test_balanced_accuracy_sd, test_auc_macro, test_auc_macro_sd,
        test_f1_macro, test_f1_macro_sd, t_vs_standard, p_vs_standard, n_folds`` (scores are
        fractions; SD uses ddof=1; the baseline's own t and p are NaN).

    Raises:
        ValueError: missing columns, an unknown baseline, or baseline and strategy folds that differ.
    """
    need = {"strategy", "fold", "val_accuracy", "test_accuracy", "n_train_subjects", "n_test_subjects"}
    need |= {f"test_{m}" for m in METRICS[1:]}
    missing = sorted(need - set(per_fold.columns))
    if missing:
        raise ValueError(f"per_fold lacks columns {missing} (expected the output of collect_metrics)")
    order = _strategy_names(strategies) if strategies is not None else list(dict.fromkeys(per_fold["strategy"]))
    if baseline is not None and baseline not in set(per_fold["strategy"]):
        raise ValueError(
            f"Baseline strategy {baseline!r} is not among the collected strategies {order}; "
            "configure it or pass baseline=None"
        )
    base = per_fold[per_fold["strategy"] == baseline].set_index("fold") if baseline is not None else None
    score_cols = ["val_accuracy", "test_accuracy"] + [f"test_{m}" for m in METRICS[1:]]
    rows = []
    for name in order:
        sub = per_fold[per_fold["strategy"] == name]
        if sub.empty:
            raise ValueError(f"Strategy {name!r} has no rows in per_fold")
        row: dict[str, Any] = {"strategy": name}
        for col in score_cols:
            values = sub[col].astype(float)
            row[col] = float(values.mean())
            row[f"{col}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        t = p = float("nan")
        if base is not None and name != baseline:
            s = sub.set_index("fold")
            if set(s.index) != set(base.index):
                raise ValueError(
                    f"Strategy {name!r} has folds {sorted(s.index)} but baseline {baseline!r} has {sorted(base.index)}"
                )
            folds = sorted(s.index)
            d = s.loc[folds, "test_accuracy"].to_numpy(float) - base.loc[folds, "test_accuracy"].to_numpy(float)
            if len(d) >= 2:
                res = corrected_resampled_ttest(
                    d,
                    n_train=float(base["n_train_subjects"].mean()),
                    n_test=float(base["n_test_subjects"].mean()),
                )
                t, p = res.t, res.p
        row["t_vs_standard"] = t
        row["p_vs_standard"] = p
        row["n_folds"] = int(len(sub))
        rows.append(row)
    cols = ["strategy"] + [c for col in score_cols for c in (col, f"{col}_sd")]
    cols += ["t_vs_standard", "p_vs_standard", "n_folds"]
    return pd.DataFrame(rows, columns=cols)


_HEADERS = {
    "strategy": "Strategy",
    "val_accuracy": "Validation accuracy (%)",
    "test_accuracy": "Test accuracy (%)",
    "test_balanced_accuracy": "Test balanced accuracy (%)",
    "test_auc_macro": "Test macro AUC (%)",
    "test_f1_macro": "Test macro F1 (%)",
    "t_vs_standard": "t vs standard",
    "p_vs_standard": "p vs standard",
    "n_folds": "Folds",
}


def _fmt(value: Any, kind: str, missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if kind == "pct":
        return f"{100.0 * value:.1f}"
    if kind == "t":
        return "inf" if math.isinf(value) and value > 0 else "-inf" if math.isinf(value) else f"{value:.2f}"
    if kind == "p":
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    return str(value)


def format_table(df: pd.DataFrame, missing: str = "–") -> pd.DataFrame:
    """Human-readable copy of :func:`comparison_table`'s output: scores as percentages with one
    decimal (like the study: ``71.4``), SD columns headed ``SD``, t with 2 and p with 3 decimals.

    Args:
        df: output of :func:`comparison_table`.
        missing: text for values that are not defined (NaN), e.g. the baseline's own t and p.

    Returns:
        A DataFrame of strings with display headers (SD columns may repeat the header ``SD``).
    """
    out = {}
    labels = []
    for col in df.columns:
        if col.endswith("_sd"):
            kind, label = "pct", "SD"
        elif col in ("t_vs_standard",):
            kind, label = "t", _HEADERS[col]
        elif col in ("p_vs_standard",):
            kind, label = "p", _HEADERS[col]
        elif col in ("strategy", "n_folds"):
            kind, label = "str", _HEADERS[col]
        else:
            kind, label = "pct", _HEADERS.get(col, col)
        out[col] = [_fmt(v, kind, missing) for v in df[col]]
        labels.append(label)
    shown = pd.DataFrame(out)
    shown.columns = labels
    return shown


def _latex_text(text: str) -> str:
    """Escape the characters a caption written from config keys can hold (``controls.shuffle_labels``)."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}"}
    return "".join(special.get(char, char) for char in text)


def write_table(
    df: pd.DataFrame, outdir: str | os.PathLike[str], stem: str = "augmentation_comparison", control: str = ""
) -> dict[str, Path]:
    """Write the table as CSV (raw fractions, full precision), Markdown and LaTeX (booktabs, percentages).

    Each file is written to a temporary name and renamed, so a crash never leaves a partial table.

    Args:
        df: output of :func:`comparison_table`.
        outdir: folder (created if needed), e.g. ``results/tables``.
        stem: file name stem.
        control: a control run's banner (:func:`brainaug.controls.control_banner`). It goes
            where no reader can miss it: a ``control`` column on every CSV row, a bold first
            line of the Markdown and the start of the LaTeX caption. ``""`` (a real run)
            writes the table as usual.

    Returns:
        ``{"csv": path, "md": path, "tex": path}``.
    """
    out = Path(outdir)
    shown = format_table(df)
    paths = {ext: out / f"{stem}.{ext}" for ext in ("csv", "md", "tex")}
    with atomic_output(paths["csv"]) as tmp:
        (df.assign(control=control) if control else df).to_csv(tmp, index=False)
    banner = f"**{control}**\n\n" if control else ""
    with atomic_output(paths["md"]) as tmp:
        tmp.write_text(banner + shown.to_markdown(index=False, disable_numparse=True) + "\n", encoding="utf-8")
    with atomic_output(paths["tex"]) as tmp:
        tex = format_table(df, missing="--").to_latex(
            index=False,
            escape=True,
            column_format="l" + "r" * (shown.shape[1] - 1),
            caption=(f"{_latex_text(control)}. " if control else "")
            + "Classifier accuracy per augmentation strategy: mean and SD over cross-validation folds; "
            "t and p from the corrected resampled t-test (Nadeau \\& Bengio 2003) of test accuracy against standard.",
            label="tab:augmentation_comparison",
        )
        tmp.write_text(tex.replace("<0.001", "$<$0.001"), encoding="utf-8")
    return paths
