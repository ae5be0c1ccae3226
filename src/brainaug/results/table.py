"""The study's headline table: one row per augmentation strategy, mean and SD over folds.

Columns follow the paper first (strategy, validation accuracy, SD, test accuracy,
SD), then test balanced accuracy with its SD and 95% confidence interval, macro
AUC and macro F1 on the test sets, then the comparison with the baseline strategy
(``results.baseline``): the mean difference in test balanced accuracy, paired by
(repeat, fold), with its 95% interval, the corrected repeated k-fold t-test
(Nadeau & Bengio 2003; Bouckaert & Frank 2004; :mod:`brainaug.results.stats`) and
Holm's adjustment of its p over the strategies compared with the baseline.
With ``cv.repeats`` r > 1, means, SDs and tests run over all k*r folds.
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
from brainaug.results.stats import corrected_interval, corrected_resampled_ttest, holm_adjust
from brainaug.splits import fold_dir

__all__ = ["METRICS", "collect_metrics", "comparison_table", "format_table", "metrics_table", "write_table"]

#: Per-split scores every classifier ``metrics.json`` holds (under ``"val"`` and ``"test"``).
METRICS = ("accuracy", "balanced_accuracy", "auc_macro", "f1_macro")
_SUBJECT_KEYS = ("train_subjects", "val_subjects", "test_subjects")
_COUNT_KEYS = ("n_real_train", "n_synthetic_train")
#: The score the baseline comparison, its interval and the t-test use.
COMPARED = "test_balanced_accuracy"


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


def _read_metrics(path: Path, strategy: str, repeat: int, fold: int) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(
            f"Missing classifier metrics for strategy {strategy!r} repeat {repeat} fold {fold}: {path}"
        )
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    row: dict[str, Any] = {"strategy": strategy, "repeat": repeat, "fold": fold}
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
    classify_dir: str | os.PathLike[str],
    strategies: Iterable[Any] | Mapping[str, Any],
    n_folds: int,
    repeats: int = 1,
) -> pd.DataFrame:
    """Read ``{classify_dir}/{strategy}/repeat{r}/fold{k}/metrics.json`` for every strategy, repeat and fold.

    Args:
        classify_dir: the ``results/classify`` folder.
        strategies: strategy names in config order (str, ``Strategy`` objects, or the config's strategies dict).
        n_folds: number of outer folds per repeat (k = 0 .. n_folds - 1).
        repeats: number of cross-validation repeats (r = 0 .. repeats - 1).

    Returns:
        One row per (strategy, repeat, fold), in strategy, repeat, fold order, with columns
        ``strategy, repeat, fold``, ``{val,test}_{accuracy,balanced_accuracy,auc_macro,f1_macro}``
        (NaN where a file has ``null``), ``n_real_train, n_synthetic_train, n_train_subjects,
        n_val_subjects, n_test_subjects``.

    Raises:
        FileNotFoundError: a metrics file is missing (named in the message).
        ValueError / TypeError: a file lacks a key or holds a wrong type (file and key named).
    """
    for name, value in (("n_folds", n_folds), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    names = _strategy_names(strategies)
    if not names:
        raise ValueError("strategies is empty: nothing to collect")
    root = Path(classify_dir)
    return metrics_table(
        {
            (name, r, k): root / name / fold_dir(r, k) / "metrics.json"
            for name in names
            for r in range(int(repeats))
            for k in range(int(n_folds))
        }
    )


def metrics_table(runs: Mapping[tuple[str, int, int], str | os.PathLike[str]]) -> pd.DataFrame:
    """Read one ``metrics.json`` per (strategy, repeat, fold), from the paths given.

    Why: the workflow passes the files it declared as inputs, so a fold folder
    left over from an earlier config can never enter the table.

    Args:
        runs: ``(strategy, repeat, fold) -> metrics.json`` in the table's row order.

    Returns:
        The rows described in :func:`collect_metrics`.

    Raises:
        ValueError: no runs, or a key that is not a (strategy, repeat, fold) triple.
    """
    if not runs:
        raise ValueError("runs is empty: nothing to collect")
    rows = []
    for key, path in runs.items():
        if not (isinstance(key, tuple) and len(key) == 3):
            raise ValueError(f"runs must be keyed by (strategy, repeat, fold), got {key!r}")
        name, r, k = key
        rows.append(_read_metrics(Path(path), str(name), int(r), int(k)))
    return pd.DataFrame(rows)


def _mean_sd(values: pd.Series) -> tuple[float, float]:
    values = values.astype(float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def comparison_table(
    per_fold: pd.DataFrame,
    baseline: str | None = "standard",
    strategies: Iterable[Any] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Summarise per-fold metrics into the study's table, with the comparison against the baseline.

    Means and SDs (ddof=1) run over every fold of every repeat. The comparison pairs each
    strategy's test balanced accuracy with the baseline's on the same (repeat, fold)
    (``d = bacc_strategy - bacc_baseline``, k*r differences) and uses the baseline's mean
    numbers of real training and test *subjects* per fold as ``n_train`` / ``n_test``
    (subjects are the independent units that the folds reshuffle; synthetic volumes do not
    add to the overlap between training sets). Balanced accuracy, not accuracy, because the
    classes are unbalanced in real cohorts and a strategy that shifts predictions towards
    the majority class must not look better for it. Holm's adjustment runs over the
    strategies that have a p-value (all but the baseline).

    Args:
        per_fold: output of :func:`collect_metrics` (a table without ``repeat`` is one repeat).
        baseline: strategy to compare with; ``None`` leaves the comparison columns empty.
        strategies: row order; default the order of first appearance in ``per_fold`` (config order).
        confidence: coverage of the intervals (0.95: 95% intervals).

    Returns:
        Columns ``strategy, val_accuracy, val_accuracy_sd, test_accuracy, test_accuracy_sd,
        test_balanced_accuracy, test_balanced_accuracy_sd, test_balanced_accuracy_ci_low,
        test_balanced_accuracy_ci_high, test_auc_macro, test_auc_macro_sd, test_f1_macro,
        test_f1_macro_sd, difference_vs_baseline, difference_ci_low, difference_ci_high,
        t_vs_baseline, p_vs_baseline, p_holm, n_repeats, n_folds`` (scores and differences are
        fractions; ``n_folds`` counts every fold of every repeat, k*r; the baseline's own
        comparison columns are NaN). ``DataFrame.attrs["baseline"]`` names the baseline.

    Raises:
        ValueError: missing columns, an unknown baseline, or baseline and strategy folds that differ.
    """
    need = {"strategy", "fold", "val_accuracy", "test_accuracy", "n_train_subjects", "n_test_subjects"}
    need |= {f"test_{m}" for m in METRICS[1:]}
    missing = sorted(need - set(per_fold.columns))
    if missing:
        raise ValueError(f"per_fold lacks columns {missing} (expected the output of collect_metrics)")
    if "repeat" not in per_fold.columns:
        per_fold = per_fold.assign(repeat=0)
    order = _strategy_names(strategies) if strategies is not None else list(dict.fromkeys(per_fold["strategy"]))
    if baseline is not None and baseline not in set(per_fold["strategy"]):
        raise ValueError(
            f"Baseline strategy {baseline!r} is not among the collected strategies {order}; "
            "configure it or pass baseline=None"
        )
    keys = ["repeat", "fold"]
    base = per_fold[per_fold["strategy"] == baseline].set_index(keys).sort_index() if baseline is not None else None
    score_cols = ["val_accuracy", "test_accuracy"] + [f"test_{m}" for m in METRICS[1:]]
    rows = []
    for name in order:
        sub = per_fold[per_fold["strategy"] == name]
        if sub.empty:
            raise ValueError(f"Strategy {name!r} has no rows in per_fold")
        if sub.duplicated(keys).any():
            raise ValueError(f"Strategy {name!r} has repeated (repeat, fold) rows in per_fold")
        row: dict[str, Any] = {"strategy": name}
        for col in score_cols:
            row[col], row[f"{col}_sd"] = _mean_sd(sub[col])
        n_train, n_test = float(sub["n_train_subjects"].mean()), float(sub["n_test_subjects"].mean())
        low = high = float("nan")
        if len(sub) >= 2:
            low, high = corrected_interval(sub[COMPARED].to_numpy(float), n_train, n_test, confidence)
        row[f"{COMPARED}_ci_low"], row[f"{COMPARED}_ci_high"] = low, high
        diff = d_low = d_high = t = p = float("nan")
        if base is not None and name != baseline:
            s = sub.set_index(keys).sort_index()
            if list(s.index) != list(base.index):
                raise ValueError(
                    f"Strategy {name!r} has (repeat, fold) {list(s.index)} but baseline {baseline!r} has "
                    f"{list(base.index)}; the comparison pairs them"
                )
            d = s[COMPARED].to_numpy(float) - base[COMPARED].to_numpy(float)
            diff = float(d.mean())
            if len(d) >= 2:
                res = corrected_resampled_ttest(
                    d,
                    n_train=float(base["n_train_subjects"].mean()),
                    n_test=float(base["n_test_subjects"].mean()),
                    confidence=confidence,
                )
                t, p, d_low, d_high = res.t, res.p, res.ci_low, res.ci_high
        row.update(difference_vs_baseline=diff, difference_ci_low=d_low, difference_ci_high=d_high)
        row.update(t_vs_baseline=t, p_vs_baseline=p)
        row["n_repeats"] = int(sub["repeat"].nunique())
        row["n_folds"] = int(len(sub))
        rows.append(row)
    cols = ["strategy"]
    for col in score_cols:
        cols += [col, f"{col}_sd"] + ([f"{col}_ci_low", f"{col}_ci_high"] if col == COMPARED else [])
    cols += ["difference_vs_baseline", "difference_ci_low", "difference_ci_high"]
    cols += ["t_vs_baseline", "p_vs_baseline", "p_holm", "n_repeats", "n_folds"]
    table = pd.DataFrame(rows)
    table["p_holm"] = holm_adjust(table["p_vs_baseline"].to_numpy(float))
    table = table[cols]
    table.attrs["baseline"] = baseline
    return table


_HEADERS = {
    "strategy": "Strategy",
    "val_accuracy": "Validation accuracy (%)",
    "test_accuracy": "Test accuracy (%)",
    "test_balanced_accuracy": "Test balanced accuracy (%)",
    "test_auc_macro": "Test macro AUC (%)",
    "test_f1_macro": "Test macro F1 (%)",
    "difference_vs_baseline": "Δ balanced accuracy vs {baseline} (pp)",
    "t_vs_baseline": "t",
    "p_vs_baseline": "p",
    "p_holm": "p (Holm)",
    "n_repeats": "Repeats",
    "n_folds": "Folds",
}


def _fmt(value: Any, kind: str, missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if kind == "pct":
        return f"{100.0 * value:.1f}"
    if kind == "diff":
        points = 100.0 * value
        return f"{0.0 if abs(points) < 0.05 else points:+.1f}"  # no "-0.0" for a rounding-level difference
    if kind == "t":
        return "inf" if math.isinf(value) and value > 0 else "-inf" if math.isinf(value) else f"{value:.2f}"
    if kind == "p":
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    return str(value)


def _interval(low: Any, high: Any, kind: str, missing: str) -> str:
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (low, high)):
        return missing
    return f"[{_fmt(low, kind)}, {_fmt(high, kind)}]"


def format_table(df: pd.DataFrame, missing: str = "–") -> pd.DataFrame:
    """Human-readable copy of :func:`comparison_table`'s output: scores as percentages with one
    decimal (like the study: ``71.4``), SD columns headed ``SD``, each interval as one
    ``[low, high]`` column headed ``95% CI``, the difference in signed percentage points,
    t with 2 and p with 3 decimals.

    Args:
        df: output of :func:`comparison_table`.
        missing: text for values that are not defined (NaN), e.g. the baseline's own t and p.

    Returns:
        A DataFrame of strings with display headers (``SD`` and ``95% CI`` headers may repeat).
    """
    baseline = df.attrs.get("baseline") or "baseline"
    level = "95% CI"
    out: list[list[str]] = []
    labels = []
    for col in df.columns:
        if col.endswith("_ci_high"):
            continue
        if col.endswith("_ci_low"):
            high = col[: -len("_low")] + "_high"
            kind = "diff" if col.startswith("difference") else "pct"
            out.append([_interval(a, b, kind, missing) for a, b in zip(df[col], df[high])])
            labels.append(level)
            continue
        if col.endswith("_sd"):
            kind, label = "pct", "SD"
        elif col == "difference_vs_baseline":
            kind, label = "diff", _HEADERS[col].format(baseline=baseline)
        elif col == "t_vs_baseline":
            kind, label = "t", _HEADERS[col]
        elif col in ("p_vs_baseline", "p_holm"):
            kind, label = "p", _HEADERS[col]
        elif col in ("strategy", "n_folds", "n_repeats"):
            kind, label = "str", _HEADERS[col]
        else:
            kind, label = "pct", _HEADERS.get(col, col)
        out.append([_fmt(v, kind, missing) for v in df[col]])
        labels.append(label)
    shown = pd.DataFrame(dict(enumerate(out)))
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
            + "Classifier accuracy per augmentation strategy: mean and SD over cross-validation folds "
            "(every fold of every repeat). 95\\% CI: corrected-t interval of the mean test balanced accuracy and of "
            "its difference to the baseline; t, p: corrected repeated k-fold t-test (Nadeau \\& Bengio 2003; "
            "Bouckaert \\& Frank 2004) of test balanced accuracy against the baseline, paired by fold; "
            "p (Holm): Holm-adjusted over the strategies compared with the baseline.",
            label="tab:augmentation_comparison",
        )
        tex = tex.replace("<0.001", "$<$0.001").replace("Δ", "$\\Delta$")
        tmp.write_text(tex, encoding="utf-8")
    return paths
