"""Figures of the study's results, each written as one PNG (about 100 dpi) atomically.

The per-scan and per-fold pictures that earlier steps draw (three planes of a scan,
real vs synthetic) live in :mod:`brainaug.plots`, below preprocessing and the GAN;
they are re-exported here so that every figure can be found in one place.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brainaug.gan.monitor import MONITOR_COLUMNS
from brainaug.plots import (
    as_volume,
    blank_axes,
    plot_real_vs_synthetic,
    plot_three_plane,
    robust_range,
    save_figure,
    three_planes,
)

__all__ = [
    "plot_gan_monitor",
    "plot_confusion_matrices",
    "plot_gan_losses",
    "plot_learning_curves",
    "plot_qc_montage",
    "plot_real_vs_synthetic",
    "plot_strategy_comparison",
    "plot_three_plane",
    "run_styles",
    "three_planes",
]


def plot_strategy_comparison(table: pd.DataFrame, path: str | os.PathLike[str], note: str = "") -> None:
    """Bar chart of validation and test accuracy per strategy with SD error bars (over folds).

    Args:
        table: output of ``brainaug.results.table.comparison_table`` (columns ``strategy``,
            ``val_accuracy``, ``val_accuracy_sd``, ``test_accuracy``, ``test_accuracy_sd``; fractions).
        path: output PNG.
        note: a control run's banner (:func:`brainaug.controls.control_banner`), shown in red
            above the chart so the figure cannot pass for a result; ``""`` for a real run.
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
    if note:
        # About 11 bold 8 pt characters per inch: wrap to the figure's width.
        width = int(11 * fig.get_figwidth())
        fig.suptitle(textwrap.fill(note, width), color="#b00020", fontsize=8, fontweight="bold")
    save_figure(fig, path)


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
        blank_axes(ax)
    save_figure(fig, path)


def run_styles(keys: Sequence[Any]) -> list[tuple[str, str | None]]:
    """Colour and legend label of each run's lines, in the order of ``keys``.

    A key is a fold (one colour and one legend entry per fold) or a ``(repeat, fold)``
    pair. Pairs share their repeat's colour, and only a repeat's first fold is
    labelled. Why: five repeats of six folds gave thirty legend entries, and the
    legend took over the figure's layout.
    """
    repeats = list(dict.fromkeys(key[0] for key in keys if isinstance(key, tuple)))
    styles: list[tuple[str, str | None]] = []
    labelled: set[Any] = set()
    for i, key in enumerate(keys):
        if isinstance(key, tuple):
            group, colour, text = ("repeat", key[0]), f"C{repeats.index(key[0]) % 10}", f"repeat {key[0]}"
        else:
            group, colour, text = ("fold", key), f"C{i % 10}", f"fold {key}"
        styles.append((colour, None if group in labelled else text))
        labelled.add(group)
    return styles


def _legend(ax: Any, styles: list[tuple[str, str | None]]) -> None:
    """A legend of at most eight rows (more entries take more columns), so it never outgrows its panel."""
    entries = sum(label is not None for _, label in styles)
    if entries:
        ax.legend(fontsize=7, ncols=math.ceil(entries / 8))


def plot_learning_curves(
    histories: Mapping[str, Sequence[pd.DataFrame] | Mapping[Any, pd.DataFrame]], path: str | os.PathLike[str]
) -> None:
    """Training curves per strategy: losses (top row) and validation balanced accuracy (bottom), one line per fold.

    Args:
        histories: strategy -> per-fold ``history.tsv`` frames with columns
            ``epoch, train_loss, val_loss, val_bacc``: a list (legend ``fold 0``, ``fold 1``, ...)
            or a mapping fold -> frame, or ``(repeat, fold)`` -> frame (one colour per repeat,
            see :func:`run_styles`).
        path: output PNG.
    """
    if not histories:
        raise ValueError("histories is empty: no strategy to plot")
    runs = {
        name: dict(frames) if isinstance(frames, Mapping) else dict(enumerate(frames))
        for name, frames in histories.items()
    }
    need = {"epoch", "train_loss", "val_loss", "val_bacc"}
    for name, frames in runs.items():
        for k, h in frames.items():
            missing = sorted(need - set(h.columns))
            if missing:
                raise ValueError(f"History of strategy {name!r} fold {k} lacks columns {missing}")
    n = len(runs)
    fig = Figure(figsize=(3.2 * n + 0.5, 5.2), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False, sharex="col")
    for j, (name, frames) in enumerate(runs.items()):
        top, bottom = axes[0, j], axes[1, j]
        styles = run_styles(list(frames))
        for (color, label), h in zip(styles, frames.values()):
            top.plot(h["epoch"], h["train_loss"], color=color, lw=1, label=label)
            top.plot(h["epoch"], h["val_loss"], color=color, lw=1, ls="--")
            bottom.plot(h["epoch"], 100 * h["val_bacc"].astype(float), color=color, lw=1)
        top.set_title(str(name), fontsize=10)
        bottom.set_xlabel("epoch")
        if j == 0:
            top.set_ylabel("loss (— train, -- val)")
            bottom.set_ylabel("val balanced accuracy (%)")
            _legend(top, styles)
    save_figure(fig, path)


def plot_gan_losses(losses: pd.DataFrame | Mapping[Any, pd.DataFrame], path: str | os.PathLike[str]) -> None:
    """One panel per loss column against iteration; several folds are drawn as separate lines.

    Args:
        losses: a ``losses.tsv`` frame (column ``iteration`` plus numeric loss columns) or
            ``{fold: frame}`` or ``{(repeat, fold): frame}`` (one colour per repeat, see
            :func:`run_styles`).
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
            if (
                c != "iteration" and c not in MONITOR_COLUMNS
                and pd.api.types.is_numeric_dtype(df[c]) and c not in cols
            ):
                cols.append(c)
    if not cols:
        raise ValueError("GAN losses hold no numeric loss column besides 'iteration'")
    ncols = min(len(cols), 3)
    nrows = math.ceil(len(cols) / ncols)
    fig = Figure(figsize=(4.0 * ncols, 2.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    styles = run_styles(list(runs))
    for ax, c in zip(axes.flat, cols):
        for (color, label), (key, df) in zip(styles, runs.items()):
            if c in df.columns:
                ax.plot(df["iteration"], df[c], lw=0.8, color=color, label=label if key != "" else None)
        ax.set_title(c, fontsize=10)
        ax.set_xlabel("iteration")
        if len(runs) > 1 and ax is axes.flat[0]:
            _legend(ax, styles)
    for ax in axes.flat[len(cols):]:
        blank_axes(ax)
    save_figure(fig, path)


def plot_gan_monitor(
    losses: Mapping[Any, pd.DataFrame], path: str | os.PathLike[str], n_classes: int
) -> None:
    """Label fidelity, MMD, MS-SSIM and nearest-neighbour ratio of the samples against iteration, per fold.

    The evidence that the generator's samples carry their diagnosis and look
    like (but do not copy) the training brains: the judge's balanced accuracy
    should rise above chance (dotted), the neighbour ratio settle near 1.

    Args:
        losses: ``{fold: losses.tsv frame}`` or ``{(repeat, fold): frame}`` with the monitor's
            columns (one colour per repeat, see :func:`run_styles`).
        path: output PNG.
        n_classes: number of diagnoses (chance = 1 / n_classes).
    """
    if not losses:
        raise ValueError("losses is empty: nothing to plot")
    titles = {
        "judge_balanced_accuracy": "judge balanced accuracy on samples",
        "mmd": "MMD to training volumes",
        "ms_ssim_synthetic": "MS-SSIM within samples",
        "nn_ratio": "nearest-neighbour ratio",
    }
    fig = Figure(figsize=(14.0, 3.2), layout="constrained")
    axes = fig.subplots(1, len(MONITOR_COLUMNS), squeeze=False)[0]
    styles = run_styles(list(losses))
    for (color, label), df in zip(styles, losses.values()):
        scored = df.dropna(subset=[c for c in MONITOR_COLUMNS if c in df.columns and c != "judge_balanced_accuracy"])
        for ax, c in zip(axes, MONITOR_COLUMNS):
            if c in scored.columns:
                ax.plot(scored["iteration"], scored[c], marker="o", ms=3, lw=0.9, color=color, label=label)
    for ax, c in zip(axes, MONITOR_COLUMNS):
        ax.set_title(titles[c], fontsize=10)
        ax.set_xlabel("iteration")
    axes[0].axhline(1.0 / n_classes, color="grey", ls=":", lw=1)
    axes[0].set_ylim(0, 1.02)
    axes[3].axhline(1.0, color="grey", ls=":", lw=1)
    _legend(axes[0], styles)
    save_figure(fig, path)


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
        v = as_volume(v, f"volume {t!r}")
        lo, hi = robust_range(v)
        ax.imshow(three_planes(v)[0], cmap="gray", vmin=lo, vmax=hi, origin="lower")
        ax.set_title(str(t), fontsize=7)
        blank_axes(ax)
    for ax in axes.flat[len(volumes):]:
        blank_axes(ax)
    save_figure(fig, path)
