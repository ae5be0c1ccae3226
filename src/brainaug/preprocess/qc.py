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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["QC_COLUMNS", "plot_qc", "robust_z", "summarise", "write_summary"]

#: Leading columns of ``results/qc/summary.tsv``.
QC_COLUMNS = ["scan_id", "correlation", "mattes_mi", "seconds", "outlier"]


def plot_qc(
    volume: np.ndarray,
    path: str | os.PathLike[str],
    title: str | None = None,
    mask: np.ndarray | None = None,
) -> None:
    """Save a three-plane view (sagittal, coronal, axial through the centre) as PNG.

    Uses ``brainaug.results.figures.plot_three_plane`` when available, so QC looks like
    the other figures; otherwise draws it here.

    Args:
        volume: (S, S, S) array in RAS voxel order, values in [-1, 1].
        path: output PNG (parent folders are created; written atomically).
        title: figure title.
        mask: optional (S, S, S) bool template brain mask, drawn as a contour.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"Expected a 3D volume for the QC picture {path}, got shape {volume.shape}")
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.{os.getpid()}.tmp.png")
    try:
        try:
            from brainaug.results.figures import plot_three_plane
        except ImportError:
            _plot_three_plane(volume, tmp, title, mask)
        else:
            plot_three_plane(volume, tmp, title=title, overlay=mask)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _plot_three_plane(volume: np.ndarray, path: Path, title: str | None, mask: np.ndarray | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cx, cy, cz = (s // 2 for s in volume.shape)
    # Arrays are (x=R, y=A, z=S); transpose so that up is superior/anterior on screen.
    views = [
        ("sagittal", volume[cx, :, :].T, None if mask is None else mask[cx, :, :].T),
        ("coronal", volume[:, cy, :].T, None if mask is None else mask[:, cy, :].T),
        ("axial", volume[:, :, cz].T, None if mask is None else mask[:, :, cz].T),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    for ax, (name, sl, m) in zip(axes, views):
        ax.imshow(sl, cmap="gray", origin="lower", vmin=-1, vmax=1, interpolation="nearest")
        if m is not None and m.any() and not m.all():
            ax.contour(m.astype(float), levels=[0.5], colors="r", linewidths=0.6)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80, format="png")
    plt.close(fig)


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
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    df.to_csv(tmp, sep="\t", index=False)
    os.replace(tmp, final)
    return df
