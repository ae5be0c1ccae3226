"""Pictures of single volumes that several pipeline steps draw: three planes of a
scan (preprocessing QC) and real next to synthetic volumes (one GAN fold).

Kept below ``preprocess``, ``gan`` and ``results`` so that each of them draws with
the same code and none has to import a later step of the pipeline.

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

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from brainaug.io.atomic import atomic_output

__all__ = [
    "DPI",
    "as_volume",
    "blank_axes",
    "first_of_class",
    "plot_real_vs_synthetic",
    "plot_three_plane",
    "robust_range",
    "save_figure",
    "three_planes",
]

DPI = 100


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as PNG atomically: a workflow job killed mid-draw leaves no PNG for Snakemake to trust."""
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")


def as_volume(v: Any, name: str) -> np.ndarray:
    """A float32 (X, Y, Z) array from an array or tensor, with or without a channel axis;
    ``name`` goes into the error, because callers pass volumes and overlays alike."""
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


def robust_range(v: np.ndarray) -> tuple[float, float]:
    """Grey-scale limits from the 1st and 99th percentiles, so one bright voxel does not
    wash out a scan; never an empty range (a constant image still draws)."""
    lo, hi = np.percentile(v, [1, 99]) if v.size else (0.0, 1.0)
    return (float(lo), float(hi)) if hi > lo else (float(lo), float(lo) + 1.0)


def blank_axes(ax: Any, text: str = "") -> None:
    """Hide ticks and frame (images need no axes); ``text`` marks an empty panel."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if text:
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="grey")


def first_of_class(volumes: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray | None:
    """The first volume of class ``k`` (None when the class is absent), so a
    picture shows the same scan on every run."""
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
            v = first_of_class(vols, labels, k)
            for p in range(3):
                ax = axes[k, 3 * half + p]
                if v is None:
                    blank_axes(ax, f"no {kind}")
                else:
                    ax.imshow(three_planes(v)[p], cmap="gray", vmin=-1, vmax=1, origin="lower")
                    blank_axes(ax)
                if k == 0:
                    ax.set_title(f"{kind} {planes[p]}", fontsize=9)
        axes[k, 0].set_ylabel(str(name), fontsize=11)
    save_figure(fig, path)


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
    v = as_volume(volume, "volume")
    ov = None
    if overlay is not None:
        ov = as_volume(overlay, "overlay")
        if ov.shape != v.shape:
            raise ValueError(f"overlay has shape {ov.shape} but volume has {v.shape}; they must match")
    lo, hi = robust_range(v)
    fig = Figure(figsize=(7.5, 2.9), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, sl, name in zip(axes, three_planes(v), ("axial", "coronal", "sagittal")):
        ax.imshow(sl, cmap="gray", vmin=lo, vmax=hi, origin="lower")
        ax.set_title(name, fontsize=9)
        blank_axes(ax)
    if ov is not None and float(ov.max()) > float(ov.min()):
        level = float(ov.min()) + 0.5 * (float(ov.max()) - float(ov.min()))
        for ax, sl in zip(axes, three_planes(ov)):
            if sl.min() < level < sl.max():
                ax.contour(sl, levels=[level], colors="red", linewidths=0.8, origin="lower")
    if title:
        fig.suptitle(str(title), fontsize=10)
    save_figure(fig, path)
