"""Quality control of preprocessing: a three-plane picture per scan and a cohort summary.

The registration similarity (Pearson correlation with the template brain inside the
template mask, on the output grid) is what flags a failed registration: a scan that
landed in the wrong place correlates poorly with the template. Outliers are flagged
both by an absolute floor and relative to the cohort (robust z-score), because a
cohort of unusual scans (e.g. another contrast) shifts every correlation at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from brainaug.io.atomic import atomic_output

__all__ = [
    "QC_CHOICES",
    "QCStopError",
    "QC_COLUMNS",
    "decide_outliers",
    "plot_qc",
    "robust_z",
    "summarise",
    "write_summary",
]

#: What ``preprocess.qc_outliers`` may say about flagged scans.
QC_CHOICES = ("stop", "exclude", "keep")

#: Columns of ``results/qc/decisions.tsv``.
DECISION_COLUMNS = ["scan_id", "correlation", "correlation_z", "flagged", "decision", "reason"]

#: Leading columns of ``results/qc/summary.tsv``.
QC_COLUMNS = ["scan_id", "correlation", "mattes_mi", "seconds", "outlier"]


def plot_qc(
    volume: np.ndarray,
    path: str | os.PathLike[str],
    title: str | None = None,
    mask: np.ndarray | None = None,
) -> None:
    """Save a three-plane view (sagittal, coronal, axial through the centre) as PNG.

    Drawn by :func:`brainaug.plots.plot_three_plane`, so QC looks like the other figures.

    Args:
        volume: (S, S, S) array in RAS voxel order, values in [-1, 1].
        path: output PNG (parent folders are created; written atomically).
        title: figure title.
        mask: optional (S, S, S) bool template brain mask, drawn as a contour.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"Expected a 3D volume for the QC picture {path}, got shape {volume.shape}")
    from brainaug.plots import plot_three_plane  # matplotlib only for the jobs that draw

    plot_three_plane(volume, path, title=title, overlay=mask)


def robust_z(values: Iterable[float]) -> np.ndarray:
    """Robust z-scores: (x - median) / (1.4826 * MAD); zeros when the MAD is 0."""
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        return x
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    if mad <= 1e-12:
        return np.zeros_like(x)
    return (x - med) / mad


def summarise(rows: Iterable[Mapping[str, Any]], min_correlation: float = 0.8, z_threshold: float = -3.0) -> pd.DataFrame:
    """Collect per-scan QC rows into the summary table and flag outliers.

    Args:
        rows: dicts as returned by ``preprocess_file`` (need ``scan_id``, ``correlation``;
            ``mattes_mi`` and ``seconds`` are optional; extra keys are kept as columns).
        min_correlation: a correlation below this is an outlier.
        z_threshold: a robust z-score of the correlation below this (vs the cohort) is an outlier.

    Returns:
        DataFrame with ``scan_id, correlation, mattes_mi, seconds, outlier, correlation_z``
        first, then any other columns, one row per scan in input order.
    """
    df = pd.DataFrame([dict(r) for r in rows])
    if df.empty:
        return pd.DataFrame(columns=[*QC_COLUMNS, "correlation_z"])
    for col in ("scan_id", "correlation"):
        if col not in df.columns:
            raise ValueError(f"QC rows need a '{col}' column; got columns {list(df.columns)}")
    if df["scan_id"].duplicated().any():
        dup = df.loc[df["scan_id"].duplicated(), "scan_id"].tolist()
        raise ValueError(f"Duplicate scan_id in QC rows: {dup}")
    for col in ("mattes_mi", "seconds"):
        if col not in df.columns:
            df[col] = np.nan
    corr = pd.to_numeric(df["correlation"], errors="raise").astype(float)
    z = robust_z(corr)
    df["correlation_z"] = np.round(z, 3)
    df["outlier"] = (corr < min_correlation) | (z < z_threshold)
    first = [*QC_COLUMNS, "correlation_z"]
    return df[first + [c for c in df.columns if c not in first]]


def write_summary(
    rows: Iterable[Mapping[str, Any]],
    path: str | os.PathLike[str],
    min_correlation: float = 0.8,
) -> pd.DataFrame:
    """:func:`summarise` and write it as TSV (e.g. ``results/qc/summary.tsv``); returns the table."""
    df = summarise(rows, min_correlation=min_correlation)
    with atomic_output(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False)
    return df


class QCStopError(RuntimeError):
    """QC flagged scans and ``preprocess.qc_outliers`` is ``stop``: nobody has decided yet."""


def decide_outliers(summary: pd.DataFrame, choice: str, min_correlation: float) -> pd.DataFrame:
    """Apply ``preprocess.qc_outliers`` to the QC summary, before any training.

    A flag in a table nobody reads is not a decision: with ``stop`` (the default)
    a flagged scan stops the run, and the message lists every flagged scan with
    its scores and names the two other choices, so the user decides once, in the
    config, where it is recorded.

    Args:
        summary: :func:`summarise`'s table (``scan_id``, ``correlation``,
            ``correlation_z``, ``outlier``).
        choice: ``"stop"``, ``"exclude"`` or ``"keep"``.
        min_correlation: ``preprocess.qc_min_correlation``, quoted in the reasons.

    Returns:
        One row per scan (``DECISION_COLUMNS``): ``decision`` is ``"train"``,
        ``"excluded"`` or ``"kept"`` (flagged but trained on), ``reason`` says why.

    Raises:
        ValueError: unknown ``choice``.
        QCStopError: ``choice`` is ``"stop"`` and a scan is flagged.
    """
    if choice not in QC_CHOICES:
        raise ValueError(f"preprocess.qc_outliers must be one of {list(QC_CHOICES)}, got {choice!r}")
    flagged = summary["outlier"].astype(str).str.lower().isin(["true", "1"]).to_numpy()

    def why(row: pd.Series) -> str:
        parts = []
        if float(row["correlation"]) < min_correlation:
            parts.append(f"correlation {float(row['correlation']):.3f} < qc_min_correlation {min_correlation}")
        if float(row["correlation_z"]) < -3.0:
            parts.append(f"robust z {float(row['correlation_z']):.2f} < -3 vs the cohort")
        return "; ".join(parts) or "flagged"

    reasons = [why(row) if f else "" for f, (_, row) in zip(flagged, summary.iterrows())]
    if choice == "stop" and flagged.any():
        listed = "\n".join(
            f"  {scan}: registration correlation {float(c):.3f}, robust z {float(z):.2f} ({reason})"
            for scan, c, z, reason, f in zip(
                summary["scan_id"], summary["correlation"], summary["correlation_z"], reasons, flagged
            )
            if f
        )
        raise QCStopError(
            f"QC flagged {int(flagged.sum())} of {len(summary)} scans, and preprocess.qc_outliers is 'stop', "
            f"so nothing is trained:\n{listed}\n"
            "Look at results/qc/<scan>.png, then decide in your config: preprocess.qc_outliers: exclude "
            "(leave them out of training) or preprocess.qc_outliers: keep (train on them); "
            "the report lists the decision."
        )
    decision = np.where(flagged, "excluded" if choice == "exclude" else "kept", "train")
    reason = [
        f"{r}; preprocess.qc_outliers: {choice}" if f else "passed QC" for r, f in zip(reasons, flagged)
    ]
    return pd.DataFrame(
        {
            "scan_id": summary["scan_id"].astype(str).to_numpy(),
            "correlation": summary["correlation"].to_numpy(),
            "correlation_z": summary["correlation_z"].to_numpy(),
            "flagged": flagged,
            "decision": decision,
            "reason": reason,
        }
    )[DECISION_COLUMNS]
