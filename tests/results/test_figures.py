"""Figures: each call writes one non-empty PNG of about the expected pixel size."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from brainaug.results.figures import (
    plot_confusion_matrices,
    plot_gan_losses,
    plot_gan_monitor,
    plot_learning_curves,
    plot_qc_montage,
    plot_real_vs_synthetic,
    plot_strategy_comparison,
    plot_three_plane,
    run_styles,
    three_planes,
)

CLASSES = ["CN", "MCI", "AD"]
S = 12


def _png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 1000
    assert not list(path.parent.glob(".*.png"))  # the temporary file was renamed, not left behind
    return mpimg.imread(path)


def _vols(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, S, S, S)).astype(np.float32)


def test_strategy_comparison(tmp_path):
    table = pd.DataFrame(
        {
            "strategy": ["standard", "gan33", "gan50"],
            "val_accuracy": [0.7, 0.72, 0.71],
            "val_accuracy_sd": [0.02, 0.03, 0.01],
            "test_accuracy": [0.69, 0.7, 0.74],
            "test_accuracy_sd": [0.04, float("nan"), 0.02],
        }
    )
    plot_strategy_comparison(table, tmp_path / "cmp.png")
    img = _png(tmp_path / "cmp.png")
    assert img.shape[0] == 400 and 450 <= img.shape[1] <= 700
    # A control run's banner is drawn in red above the chart, on the same canvas.
    plot_strategy_comparison(table, tmp_path / "control.png", note="CONTROL RUN - NOT A RESULT: " + "shuffled " * 20)
    control = _png(tmp_path / "control.png")
    assert control.shape == img.shape
    red = (control[..., 0] > 0.5) & (control[..., 1] < 0.2) & (control[..., 2] < 0.3)
    assert red[:60].sum() > 200 and not red[60:].any()


def test_confusion_matrices(tmp_path):
    conf = {s: np.arange(9).reshape(3, 3) for s in ("standard", "standard_aug", "gan33", "gan50")}
    plot_confusion_matrices(conf, CLASSES, tmp_path / "conf.png")
    img = _png(tmp_path / "conf.png")
    assert img.shape[:2] == (620, 990)  # 2 rows x 3 columns of 3.3 x 3.1 in at 100 dpi
    with pytest.raises(ValueError, match=r"strategy 'bad' has shape \(2, 2\), expected \(3, 3\)"):
        plot_confusion_matrices({"bad": np.eye(2)}, CLASSES, tmp_path / "x.png")


def test_learning_curves(tmp_path):
    h = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.8, 0.6], "val_loss": [1.1, 0.9, 0.9], "val_bacc": [0.4, 0.5, 0.55]})
    plot_learning_curves({"standard": [h, h * 1.1], "gan50": [h]}, tmp_path / "curves.png")
    assert _png(tmp_path / "curves.png").shape[:2] == (520, 690)
    with pytest.raises(ValueError, match=r"strategy 'gan50' fold 0 lacks columns \['val_bacc'\]"):
        plot_learning_curves({"gan50": [h.drop(columns="val_bacc")]}, tmp_path / "x.png")


def test_run_styles_give_one_colour_and_entry_per_fold_or_per_repeat():
    assert run_styles([0, 1, 2]) == [("C0", "fold 0"), ("C1", "fold 1"), ("C2", "fold 2")]
    styles = run_styles([(r, k) for r in (0, 1, 4) for k in range(6)])
    assert [label for _, label in styles if label] == ["repeat 0", "repeat 1", "repeat 4"]
    assert [colour for colour, _ in styles] == ["C0"] * 6 + ["C1"] * 6 + ["C2"] * 6


@pytest.mark.parametrize("keys", [[(r, k) for r in range(5) for k in range(6)], list(range(20))],
                         ids=["five repeats of six folds", "twenty folds"])
def test_many_runs_leave_the_curves_their_panels(tmp_path, monkeypatch, keys):
    """Five repeats once gave a 30-entry legend that squeezed every panel to a sliver."""
    import brainaug.results.figures as figures

    drawn = []
    real_save = figures.save_figure
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: (drawn.append(fig), real_save(fig, path)))
    h = pd.DataFrame({"epoch": np.arange(1, 31), "train_loss": np.linspace(1.5, 0.3, 30),
                      "val_loss": np.linspace(1.5, 0.6, 30), "val_bacc": np.linspace(0.3, 0.8, 30)})
    monitor = pd.DataFrame({"iteration": [100, 200], "loss_d": [1.0, 0.5], "judge_balanced_accuracy": [0.8, 0.9],
                            "mmd": [1e-3, 5e-4], "ms_ssim_synthetic": [0.9, 0.85], "nn_ratio": [1.2, 1.1]})
    plot_learning_curves({"standard": {key: h for key in keys}, "gan50": {key: h for key in keys}}, tmp_path / "lc.png")
    plot_gan_monitor({key: monitor for key in keys}, tmp_path / "gm.png", n_classes=3)
    plot_gan_losses({key: monitor for key in keys}, tmp_path / "gl.png")
    for fig in drawn:
        fig.draw_without_rendering()
        heights = [ax.get_position().height for ax in fig.axes if ax.get_visible() and ax.has_data()]
        assert min(heights) > 0.25, f"a panel of {len(keys)} runs shrank to {min(heights):.2f} of the figure"


def test_real_vs_synthetic(tmp_path):
    real, syn = _vols(6, 0), _vols(4, 1)
    plot_real_vs_synthetic(real, np.arange(6) % 3, syn, [0, 1, 0, 1], CLASSES, tmp_path / "rs.png")
    img = _png(tmp_path / "rs.png")
    assert img.shape[:2] == (570, 950)


def test_real_vs_synthetic_rejects_mismatched_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"real volumes have shape \(12, 12, 12\) but synthetic volumes have \(8, 8, 8\)"):
        plot_real_vs_synthetic(_vols(3, 0), [0, 1, 2], np.zeros((3, 8, 8, 8)), [0, 1, 2], CLASSES, tmp_path / "x.png")
    with pytest.raises(ValueError, match="one label per volume"):
        plot_real_vs_synthetic(_vols(3, 0), [0, 1], _vols(3, 1), [0, 1, 2], CLASSES, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_gan_losses_single_and_per_fold(tmp_path):
    df = pd.DataFrame({"iteration": np.arange(50), "loss_d": np.linspace(1, 0, 50), "loss_g": np.linspace(0, 1, 50)})
    plot_gan_losses(df, tmp_path / "one.png")
    assert _png(tmp_path / "one.png").shape[:2] == (280, 800)
    plot_gan_losses({0: df, 1: df.assign(loss_cd=1.0)}, tmp_path / "folds.png")
    assert _png(tmp_path / "folds.png").shape[:2] == (280, 1200)
    with pytest.raises(ValueError, match="lack an 'iteration' column"):
        plot_gan_losses(df.drop(columns="iteration"), tmp_path / "x.png")


def test_gan_monitor_plots_the_scored_iterations_only(tmp_path):
    it = np.arange(1, 101)
    scored = it % 25 == 0
    df = pd.DataFrame({"iteration": it, "eg_loss": np.linspace(1, 0, 100)})
    for col, value in (("judge_balanced_accuracy", 0.8), ("mmd", 0.01), ("ms_ssim_synthetic", 0.9), ("nn_ratio", 1.2)):
        df[col] = np.where(scored, value, np.nan)
    plot_gan_monitor({0: df, 1: df}, tmp_path / "monitor.png", n_classes=3)
    assert _png(tmp_path / "monitor.png").shape[:2] == (320, 1400)
    # The monitor's sparse columns stay out of the loss figure.
    plot_gan_losses(df, tmp_path / "losses.png")
    assert _png(tmp_path / "losses.png").shape[:2] == (280, 400)
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_gan_monitor({}, tmp_path / "x.png", n_classes=3)


def test_qc_montage(tmp_path):
    vols = list(_vols(10, 2)) + [np.zeros((8, 9, 10))]
    plot_qc_montage(vols, [f"sub-{i:03d}" for i in range(11)], tmp_path / "qc.png", ncols=4)
    assert _png(tmp_path / "qc.png").shape[:2] == (540, 640)
    with pytest.raises(ValueError, match="11 volumes but 2 titles"):
        plot_qc_montage(vols, ["a", "b"], tmp_path / "x.png")


def test_three_plane_with_overlay(tmp_path):
    v = _vols(1, 3)[0]
    mask = np.zeros_like(v)
    mask[3:9, 3:9, 3:9] = 1
    plot_three_plane(v, tmp_path / "sub" / "scan.png", title="sub-001", overlay=mask)
    assert _png(tmp_path / "sub" / "scan.png").shape[:2] == (290, 750)
    with pytest.raises(ValueError, match=r"overlay has shape \(4, 4, 4\) but volume has \(12, 12, 12\)"):
        plot_three_plane(v, tmp_path / "x.png", overlay=np.zeros((4, 4, 4)))


def test_three_planes_orientation():
    # RAS (x, y, z): a voxel at high y (anterior) must appear in the upper rows of the axial slice.
    v = np.zeros((4, 6, 8))
    v[0, 5, 4] = 1.0  # left-most (x = 0), most anterior (y = 5), in the central axial slice (z = 4)
    axial, coronal, sagittal = three_planes(v)
    assert axial.shape == (6, 4) and coronal.shape == (8, 4) and sagittal.shape == (8, 6)
    assert axial[5, 0] == 1.0  # row = y (drawn upward with origin="lower"), column = x
