"""The report's opening page: the answer first, then how far to trust it.

Snakemake's report opens on the workflow description next to the rule graph.
The ``front_page`` rule writes this HTML fragment, and ``workflow/report/workflow.rst``
includes it there, so the first view already holds the comparison table, the
strategy figure, the GAN's label fidelity, the leakage and control status and
the QC decisions, instead of three clicks away.

The figure is embedded as a data URI, so the fragment (and the report) stays one
self-contained file.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from brainaug.results.table import _fmt, format_table

__all__ = ["front_page_html", "write_front_page"]

#: Snakemake's opening view puts the description in a narrow (max-w-lg) column, vertically
#: centred beside the rule graph; a long page then loses its top. Widen that column and
#: align it to the top, only where it holds this page (``:has``).
_STYLE = (
    "<style>.max-w-lg:has(#brainaug-summary){max-width:56rem}"
    ".items-center:has(#brainaug-summary){align-items:flex-start}"
    "#brainaug-summary{overflow-x:auto}"
    "#brainaug-summary table{border-collapse:collapse;font-size:0.8em;margin:0.5em 0}"
    "#brainaug-summary th,#brainaug-summary td{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "#brainaug-summary td:first-child,#brainaug-summary th:first-child{text-align:left}"
    "#brainaug-summary .control{background:#b00020;color:white;font-weight:bold;padding:0.5em}"
    "#brainaug-summary .ok{color:#1b5e20}#brainaug-summary .warn{color:#b00020}</style>"
)


def _esc(text: object) -> str:
    return html.escape(str(text))


def _table_html(frame: pd.DataFrame, table_id: str) -> str:
    return frame.to_html(index=False, escape=True, border=0, table_id=table_id, na_rep="–")


def _pct(mean: object, sd: object = None) -> str:
    value = pd.to_numeric(pd.Series([mean, sd]), errors="coerce")
    if pd.isna(value[0]):
        return "–"
    return f"{100 * value[0]:.1f}" + (f" ± {100 * value[1]:.1f}" if not pd.isna(value[1]) else "")


def _comparison(table: pd.DataFrame, baseline: str) -> str:
    """The table's key columns; the full table (AUC, F1, t, unadjusted p) is under Results."""
    table = table.drop(columns=["control"], errors="ignore").copy()
    table.attrs["baseline"] = baseline
    shown = pd.DataFrame({"Strategy": table["strategy"].astype(str)})
    shown["Test balanced accuracy (%)"] = [
        _pct(m, s) for m, s in zip(table["test_balanced_accuracy"], table.get("test_balanced_accuracy_sd", [None] * len(table)))
    ]
    full = format_table(table)
    if "test_balanced_accuracy_ci_low" in table.columns:
        shown["95% CI"] = full.iloc[:, list(full.columns).index("95% CI")].to_numpy()
    for column in ("difference_vs_baseline", "p_holm"):
        if column in table.columns:
            label = {"difference_vs_baseline": f"Δ vs {baseline} (pp)", "p_holm": "p (Holm)"}[column]
            kind = "diff" if column.startswith("difference") else "p"
            shown[label] = [_fmt(v, kind) for v in table[column]]
    shown["Test accuracy (%)"] = [_pct(m, s) for m, s in zip(table["test_accuracy"], table.get("test_accuracy_sd", [None] * len(table)))]
    shown["Validation accuracy (%)"] = [
        _pct(m, s) for m, s in zip(table["val_accuracy"], table.get("val_accuracy_sd", [None] * len(table)))
    ]
    if "n_folds" in table.columns:
        shown["Folds"] = table["n_folds"].astype(str).to_numpy()
    return _table_html(shown, "brainaug-comparison")


#: Fewer repeats than this and the page warns that a second seed may reorder the strategies.
STABLE_REPEATS = 3


def _precision(table: pd.DataFrame) -> str:
    """How often each subject was tested, and what that means for reading the table.

    Why on the first page: with one repeat the embedded cohort's strategy means moved by about
    3 points (SD) from seed to seed, more than several differences between strategies. Two
    runs agreed within 5 points on every strategy about 1 time in 5 with one repeat, 4 in 5
    with three (benchmarks/README.md, "Five repeats").
    """
    repeats = int(table["n_repeats"].max()) if "n_repeats" in table.columns else 1
    # The table's n_folds counts every fold of every repeat (k * r); the sentence names k.
    folds = int(table["n_folds"].max()) // repeats if "n_folds" in table.columns else 0
    times = "once" if repeats == 1 else f"{repeats} times"
    unit = f"{repeats} repeat{'s' if repeats > 1 else ''}" + (f" of {folds} folds" if folds else "")
    tested = f"Each subject was tested {times} ({unit})"
    if repeats >= STABLE_REPEATS:
        return f'<li class="ok" id="brainaug-repeats">{tested}, with new folds and new models each time.</li>'
    return (
        f'<li class="warn" id="brainaug-repeats">{tested}. A run with another seed can move each strategy\'s '
        "mean by several points (about 3, SD, with one repeat of the embedded cohort), so strategies a few "
        "points apart may swap places. Read Δ with its interval, and set <code>cv.repeats</code> to "
        f"{STABLE_REPEATS} or more before trusting a ranking.</li>"
    )


def _figure(png: str | os.PathLike[str]) -> str:
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return (
        f'<img id="brainaug-strategy-figure" alt="Strategy comparison" '
        f'src="data:image/png;base64,{data}" style="max-width:100%">'
    )


def _gan_fidelity(gan_quality: pd.DataFrame | None, n_classes: int) -> str:
    if gan_quality is None:
        return "<p>No strategy uses synthetic volumes, so no GAN was trained.</p>"
    folds = gan_quality[gan_quality["repeat"].astype(str) != "all"]
    mean = gan_quality[gan_quality["fold"].astype(str) == "mean"]
    sd = gan_quality[gan_quality["fold"].astype(str) == "sd"]

    def cell(column: str, pct: bool = True) -> str:
        if column not in gan_quality.columns or mean.empty:
            return "–"
        m, s = float(mean[column].iloc[0]), float(sd[column].iloc[0]) if not sd.empty else float("nan")
        if pct:
            return f"{100 * m:.1f} % (SD {100 * s:.1f})" if s == s else f"{100 * m:.1f} %"
        return f"{m:.3g}"

    rejected = int(pd.to_numeric(folds.get("n_rejected_memorization", pd.Series(dtype=float))).sum())
    rows = [
        ("Judge's balanced accuracy on synthetic volumes (label fidelity)", cell("judge_bacc_synthetic")),
        ("Judge's balanced accuracy on the fold's real test scans", cell("judge_bacc_real_test")),
        ("Chance", f"{100 / n_classes:.1f} %"),
        ("MMD to training volumes (mean)", cell("mmd", pct=False)),
        ("Synthetic volumes rejected by the memorization gate (all folds)", str(rejected)),
    ]
    body = "".join(f"<tr><td>{_esc(a)}</td><td>{_esc(b)}</td></tr>" for a, b in rows)
    return (
        f"<p>{len(folds)} GAN(s), one per repeat and fold. The judge is each fold's real-data classifier, "
        "trained on that fold's training subjects only; samples of each diagnosis should be judged as that "
        "diagnosis.</p>"
        f'<table id="brainaug-gan-fidelity"><tbody>{body}</tbody></table>'
    )


def _qc(decisions: pd.DataFrame, choice: str) -> str:
    flagged = decisions[decisions["flagged"].astype(str).str.lower().isin(["true", "1"])]
    head = (
        f"<p>QC flagged {len(flagged)} of {len(decisions)} scans "
        f"(preprocess.qc_outliers: <b>{_esc(choice)}</b>).</p>"
    )
    if flagged.empty:
        return head
    shown = flagged[["scan_id", "correlation", "correlation_z", "decision", "reason"]]
    return head + _table_html(shown, "brainaug-qc-decisions")


def front_page_html(
    table: pd.DataFrame,
    figure_png: str | os.PathLike[str],
    qc_decisions: pd.DataFrame,
    qc_choice: str,
    classes: Sequence[str],
    baseline: str,
    control: str = "",
    gan_quality: pd.DataFrame | None = None,
    n_classifier_runs: int = 0,
    n_gans: int = 0,
) -> str:
    """The opening page as an HTML fragment.

    Args:
        table: ``tables/augmentation_comparison.csv`` (raw fractions).
        figure_png: ``figures/strategy_comparison.png``, embedded.
        qc_decisions: ``qc/decisions.tsv`` (:func:`brainaug.preprocess.qc.decide_outliers`).
        qc_choice: ``preprocess.qc_outliers``.
        classes: the diagnoses (chance is 1 / their number).
        baseline: ``results.baseline``.
        control: the control banner (``""`` for a real run).
        gan_quality: ``tables/gan_quality.csv``, or ``None`` when no GAN was trained.
        n_classifier_runs, n_gans: how many runs the leakage check covered.
    """
    parts = ['<div id="brainaug-summary">', _STYLE]
    if control:
        parts.append(f'<p class="control" id="brainaug-control">{_esc(control)}</p>')
    parts.append("<h2>Does augmentation help?</h2>")
    parts.append(
        f"<p>Mean ± SD over every cross-validation fold; Δ and p compare test balanced accuracy with "
        f"<b>{_esc(baseline)}</b> (corrected repeated k-fold t-test, Holm-adjusted). The full table is "
        "under Results.</p>"
    )
    parts.append(_comparison(table, baseline))
    parts.append(_figure(figure_png))
    parts.append("<h3>Can the result be trusted?</h3><ul>")
    parts.append(
        '<li class="ok" id="brainaug-leakage">Leakage checks passed: no validation or test subject reached '
        f"the training of any of {n_classifier_runs} classifier runs or {n_gans} GAN(s) (checked on the subject "
        "lists each training step recorded; the table is not written otherwise).</li>"
    )
    parts.append(
        f'<li class="warn" id="brainaug-control-status">{_esc(control)}</li>'
        if control
        else '<li class="ok" id="brainaug-control-status">Not a control run: labels and anatomy are the cohort\'s own.</li>'
    )
    parts.append(
        '<li class="ok">No scan appears under two subjects (same file or identical bytes at the cohort step; '
        "identical voxels or near-identical preprocessed volumes at the dataset step).</li>"
    )
    parts.append(_precision(table) + "</ul>")
    parts.append("<h3>GAN label fidelity</h3>")
    parts.append(_gan_fidelity(gan_quality, len(classes)))
    parts.append("<h3>Quality control</h3>")
    parts.append(_qc(qc_decisions, qc_choice))
    parts.append("</div>")
    return "\n".join(parts)


def write_front_page(path: str | os.PathLike[str], **kwargs: object) -> None:
    """:func:`front_page_html` written atomically to ``path``."""
    from brainaug.io.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(front_page_html(**kwargs), encoding="utf-8")
