"""Figures of the study, each written as one PNG (about 100 dpi) atomically.

Figures are built with matplotlib's object-oriented API (``matplotlib.figure.Figure``,
Agg canvas) instead of ``pyplot``: no global figure registry, no backend to select,
nothing to leak when a workflow job draws hundreds of QC images.

Slice convention: volumes are (S, S, S) arrays in RAS order (x → right, y → anterior,
z → superior, as written by preprocessing). Axial ``v[:, :, c]``, coronal ``v[:, c, :]``
and sagittal ``v[c, :, :]`` slices are transposed and drawn with ``origin="lower"``,
so anterior (axial) or superior (coronal, sagittal) is up and the subject's right is
on the viewer's right (neurological convention; no flips are applied).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brainaug.results import atomic_output

__all__ = [
    "plot_confusion_matrices",
    "plot_gan_losses",
    "plot_learning_curves",
    "plot_qc_montage",
    "plot_real_vs_synthetic",
    "plot_strategy_comparison",
    "plot_three_plane",
    "three_planes",
]

DPI = 100


def _save(fig: Figure, path: str | os.PathLike[str]) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")


def _volume(v: Any, name: str) -> np.ndarray:
    v = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float32)
    if v.ndim == 4 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 3:
        raise ValueError(f"{name} must be a 3D volume (X, Y, Z), got shape {v.shape}")
    return v


def three_planes(volume: np.ndarray) -> list[np.ndarray]:
    """The central axial, coronal and sagittal slices of an RAS (X, Y, Z) volume, ready for
    ``imshow(..., origin="lower")`` (anterior/superior up).

    Args:
        volume: (X, Y, Z) array.

    Returns:
        ``[axial (Y, X), coronal (Z, X), sagittal (Z, Y)]``.
    """
    x, y, z = (s // 2 for s in volume.shape)
    return [volume[:, :, z].T, volume[:, y, :].T, volume[x, :, :].T]


def _robust_range(v: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(v, [1, 99]) if v.size else (0.0, 1.0)
    return (float(lo), float(hi)) if hi > lo else (float(lo), float(lo) + 1.0)


def _blank(ax: Any, text: str = "") -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if text:
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="grey")


def plot_strategy_comparison(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Bar chart of validation and test accuracy per strategy with SD error bars (over folds).

    Args:
        table: output of ``brainaug.results.table.comparison_table`` (columns ``strategy``,
            ``val_accuracy``, ``val_accuracy_sd``, ``test_accuracy``, ``test_accuracy_sd``; fractions).
        path: output PNG.
    """
    need = ["strategy", "val_accuracy", "val_accuracy_sd", "test_accuracy", "test_accuracy_sd"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing} (expected comparison_table's output)")
    n = len(table)
    fig = Figure(figsize=(max(5.0, 1.2 * n + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(n)
    w = 0.38
    for off, split, label, color in ((-w / 2, "val", "validation", "#8fb3d9"), (w / 2, "test", "test", "#2f5f8f")):
        mean = 100 * table[f"{split}_accuracy"].to_numpy(float)
        sd = 100 * np.nan_to_num(table[f"{split}_accuracy_sd"].to_numpy(float))
        bars = ax.bar(x + off, mean, w, yerr=sd, capsize=3, label=label, color=color)
        ax.bar_label(bars, labels=[f"{m:.1f}" for m in mean], padding=2, fontsize=7)
    ax.set_xticks(x, [str(s) for s in table["strategy"]], rotation=20 if n > 4 else 0)
    ax.set_ylabel("accuracy (%), mean ± SD over folds")
    ax.set_ylim(0, 115)  # room above 100 % for the legend
    ax.legend(loc="upper center", ncols=2, fontsize=8, frameon=False)
    ax.set_title("Classifier accuracy per augmentation strategy")
    _save(fig, path)


def plot_confusion_matrices(
    per_strategy_confusions: Mapping[str, np.ndarray], classes: Sequence[str], path: str | os.PathLike[str]
) -> None:
    """One confusion-matrix panel per strategy (counts summed over folds, colour = row-normalised recall).

    Args:
        per_strategy_confusions: strategy -> (C, C) counts, rows = true class, columns = predicted.
        classes: the C class names in label order.
        path: output PNG.
    """
    c = len(classes)
    if not per_strategy_confusions:
        raise ValueError("per_strategy_confusions is empty: no strategy to plot")
    mats = {}
    for name, m in per_strategy_confusions.items():
        m = np.asarray(m, dtype=float)
        if m.shape != (c, c):
            raise ValueError(f"Confusion matrix of strategy {name!r} has shape {m.shape}, expected ({c}, {c})")
        mats[name] = m
    ncols = min(len(mats), 3)
    nrows = math.ceil(len(mats) / ncols)
    fig = Figure(figsize=(3.3 * ncols, 3.1 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (name, m) in zip(axes.flat, mats.items()):
        rows = m.sum(1, keepdims=True)
        norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(c):
            for j in range(c):
                ax.text(j, i, f"{int(round(m[i, j]))}", ha="center", va="center", fontsize=9,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(c), classes)
        ax.set_yticks(range(c), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(str(name), fontsize=10)
    for ax in axes.flat[len(mats):]:
        _blank(ax)
    _save(fig, path)


def plot_learning_curves(histories: Mapping[str, Sequence[pd.DataFrame]], path: str | os.PathLike[str]) -> None:
    """Training curves per strategy: losses (top row) and validation balanced accuracy (bottom), one line per fold.

    Args:
        histories: strategy -> list of per-fold ``history.tsv`` frames with columns
            ``epoch, train_loss, val_loss, val_bacc``.
        path: output PNG.
    """
    if not histories:
        raise ValueError("histories is empty: no strategy to plot")
    need = {"epoch", "train_loss", "val_loss", "val_bacc"}
    for name, frames in histories.items():
        for k, h in enumerate(frames):
            missing = sorted(need - set(h.columns))
            if missing:
                raise ValueError(f"History of strategy {name!r} fold {k} lacks columns {missing}")
    n = len(histories)
    fig = Figure(figsize=(3.2 * n + 0.5, 5.2), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False, sharex="col")
    for j, (name, frames) in enumerate(histories.items()):
        top, bottom = axes[0, j], axes[1, j]
        for k, h in enumerate(frames):
            color = f"C{k % 10}"
            top.plot(h["epoch"], h["train_loss"], color=color, lw=1, label=f"fold {k}")
            top.plot(h["epoch"], h["val_loss"], color=color, lw=1, ls="--")
            bottom.plot(h["epoch"], 100 * h["val_bacc"].astype(float), color=color, lw=1)
        top.set_title(str(name), fontsize=10)
        bottom.set_xlabel("epoch")
        if j == 0:
            top.set_ylabel("loss (— train, -- val)")
            bottom.set_ylabel("val balanced accuracy (%)")
            if frames:
                top.legend(fontsize=7)
    _save(fig, path)


def _first_of_class(volumes: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray | None:
    idx = np.flatnonzero(labels == k)
    return np.asarray(volumes[idx[0]], dtype=np.float32) if len(idx) else None


def plot_real_vs_synthetic(
    real: np.ndarray,
    real_labels: Sequence[int] | np.ndarray,
    synthetic: np.ndarray,
    synthetic_labels: Sequence[int] | np.ndarray,
    classes: Sequence[str],
    path: str | os.PathLike[str],
) -> None:
    """Rows = classes; columns = real axial, coronal, sagittal, then synthetic axial, coronal, sagittal.

    Shows the first real and the first synthetic volume of each class on a shared
    grey scale of [-1, 1] (the GAN's intensity range), so contrast differences show.

    Args:
        real: (N, S, S, S) real volumes (RAS order).
        real_labels: (N,) integer labels.
        synthetic: (M, S, S, S) synthetic volumes of the same spatial shape.
        synthetic_labels: (M,) integer labels.
        classes: class names in label order.
        path: output PNG.

    Raises:
        ValueError: shapes or label counts that do not match.
    """
    real = np.asarray(real)
    synthetic = np.asarray(synthetic)
    if real.ndim != 4 or synthetic.ndim != 4:
        raise ValueError(f"real and synthetic must be (N, S, S, S) arrays, got {real.shape} and {synthetic.shape}")
    if real.shape[1:] != synthetic.shape[1:]:
        raise ValueError(
            f"real volumes have shape {real.shape[1:]} but synthetic volumes have {synthetic.shape[1:]}; "
            "they must match to be compared"
        )
    y_real, y_syn = np.asarray(real_labels), np.asarray(synthetic_labels)
    if y_real.shape != (len(real),) or y_syn.shape != (len(synthetic),):
        raise ValueError(
            f"Expected one label per volume: real {len(real)} volumes / {y_real.shape} labels, "
            f"synthetic {len(synthetic)} volumes / {y_syn.shape} labels"
        )
    nrows = len(classes)
    fig = Figure(figsize=(9.5, 1.7 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, 6, squeeze=False)
    planes = ("axial", "coronal", "sagittal")
    for k, name in enumerate(classes):
        for half, (vols, labels, kind) in enumerate(((real, y_real, "real"), (synthetic, y_syn, "synthetic"))):
            v = _first_of_class(vols, labels, k)
            for p in range(3):
                ax = axes[k, 3 * half + p]
                if v is None:
                    _blank(ax, f"no {kind}")
                else:
                    ax.imshow(three_planes(v)[p], cmap="gray", vmin=-1, vmax=1, origin="lower")
                    _blank(ax)
                if k == 0:
                    ax.set_title(f"{kind} {planes[p]}", fontsize=9)
        axes[k, 0].set_ylabel(str(name), fontsize=11)
    _save(fig, path)


def plot_gan_losses(losses: pd.DataFrame | Mapping[Any, pd.DataFrame], path: str | os.PathLike[str]) -> None:
    """One panel per loss column against iteration; several folds are drawn as separate lines.

    Args:
        losses: a ``losses.tsv`` frame (column ``iteration`` plus numeric loss columns) or
            ``{fold: frame}``.
        path: output PNG.
    """
    runs = {"": losses} if isinstance(losses, pd.DataFrame) else dict(losses)
    if not runs:
        raise ValueError("losses is empty: nothing to plot")
    cols: list[str] = []
    for key, df in runs.items():
        if "iteration" not in df.columns:
            raise ValueError(f"GAN losses{f' of fold {key}' if key != '' else ''} lack an 'iteration' column")
        for c in df.columns:
            if c != "iteration" and pd.api.types.is_numeric_dtype(df[c]) and c not in cols:
                cols.append(c)
    if not cols:
        raise ValueError("GAN losses hold no numeric loss column besides 'iteration'")
    ncols = min(len(cols), 3)
    nrows = math.ceil(len(cols) / ncols)
    fig = Figure(figsize=(4.0 * ncols, 2.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, c in zip(axes.flat, cols):
        for i, (key, df) in enumerate(runs.items()):
            if c in df.columns:
                ax.plot(df["iteration"], df[c], lw=0.8, color=f"C{i % 10}", label=f"fold {key}" if key != "" else None)
        ax.set_title(c, fontsize=10)
        ax.set_xlabel("iteration")
        if len(runs) > 1 and ax is axes.flat[0]:
            ax.legend(fontsize=7)
    for ax in axes.flat[len(cols):]:
        _blank(ax)
    _save(fig, path)


def plot_qc_montage(
    volumes: Sequence[np.ndarray], titles: Sequence[str], path: str | os.PathLike[str], ncols: int = 8
) -> None:
    """Grid of mid-axial slices, one per scan, for a quick visual check of a whole cohort.

    Args:
        volumes: list of (X, Y, Z) volumes (shapes may differ); each is scaled to its own 1-99 percentile range.
        titles: one title per volume (e.g. scan ids).
        path: output PNG.
        ncols: panels per row.
    """
    if len(volumes) != len(titles):
        raise ValueError(f"Got {len(volumes)} volumes but {len(titles)} titles; expected one title per volume")
    if not volumes:
        raise ValueError("volumes is empty: nothing to plot")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    ncols = min(ncols, len(volumes))
    nrows = math.ceil(len(volumes) / ncols)
    fig = Figure(figsize=(1.6 * ncols, 1.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, v, t in zip(axes.flat, volumes, titles):
        v = _volume(v, f"volume {t!r}")
        lo, hi = _robust_range(v)
        ax.imshow(three_planes(v)[0], cmap="gray", vmin=lo, vmax=hi, origin="lower")
        ax.set_title(str(t), fontsize=7)
        _blank(ax)
    for ax in axes.flat[len(volumes):]:
        _blank(ax)
    _save(fig, path)


def plot_three_plane(
    volume: np.ndarray, path: str | os.PathLike[str], title: str | None = None, overlay: np.ndarray | None = None
) -> None:
    """Central axial, coronal and sagittal slices of one scan (per-scan QC).

    Args:
        volume: (X, Y, Z) volume in RAS order; shown on its 1-99 percentile range.
        path: output PNG.
        title: figure title (e.g. scan id and registration similarity).
        overlay: optional (X, Y, Z) mask or map of the same shape (e.g. the brain mask),
            drawn as a red contour at 0.5 of its maximum.

    Raises:
        ValueError: a non-3D volume or an overlay of another shape.
    """
    v = _volume(volume, "volume")
    ov = None
    if overlay is not None:
        ov = _volume(overlay, "overlay")
        if ov.shape != v.shape:
            raise ValueError(f"overlay has shape {ov.shape} but volume has {v.shape}; they must match")
    lo, hi = _robust_range(v)
    fig = Figure(figsize=(7.5, 2.9), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, sl, name in zip(axes, three_planes(v), ("axial", "coronal", "sagittal")):
        ax.imshow(sl, cmap="gray", vmin=lo, vmax=hi, origin="lower")
        ax.set_title(name, fontsize=9)
        _blank(ax)
    if ov is not None and float(ov.max()) > float(ov.min()):
        level = float(ov.min()) + 0.5 * (float(ov.max()) - float(ov.min()))
        for ax, sl in zip(axes, three_planes(ov)):
            if sl.min() < level < sl.max():
                ax.contour(sl, levels=[level], colors="red", linewidths=0.8, origin="lower")
    if title:
        fig.suptitle(str(title), fontsize=10)
    _save(fig, path)
