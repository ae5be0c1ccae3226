"""One outer fold's GAN, end to end: train on the fold's training subjects only,
synthesize the pool the strategies draw from, and judge it.

With repeated cross-validation there is one GAN per (repeat, fold); repeat r
trains with ``repeat_seed(gan.seed, r)`` (``gan.seed`` itself for repeat 0), so
repeats differ in their GANs' randomness as well as in their folds.

Kept apart from the training loop so that the leakage rule — the GAN of fold k
never sees fold k's validation or test subjects — lives in one short
function that records exactly whom it trained on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from brainaug.dataset import load_dataset, select_subjects
from brainaug.gan.memorization import draw_through_gate, reference_distance
from brainaug.gan.monitor import MONITOR_COLUMNS, Judge, SampleMonitor
from brainaug.gan.quality import QualitySettings, gan_quality
from brainaug.gan.settings import GANSettings
from brainaug.gan.synthesize import save_generator, save_synthetic, synthesize
from brainaug.gan.train import train_gan
from brainaug.io.atomic import atomic_output
from brainaug.plots import plot_real_vs_synthetic
from brainaug.splits import fold_roles, read_splits, repeat_seed
from brainaug.strategies import parse_strategies, synthetic_class_counts
from brainaug.template import grid_affine

__all__ = ["run_gan_fold", "synthetic_pool_size"]


def synthetic_pool_size(
    real_labels: np.ndarray, strategies: Mapping[str, Any], n_classes: int, minimum: int
) -> int:
    """Synthetic volumes per class so that every strategy can draw its share.

    A gan50 run on a fold with 300 real AD scans needs 300 synthetic AD scans;
    a fixed config value would break on a large cohort, so the pool grows to
    the largest need of any strategy.
    """
    need = minimum
    for strategy in parse_strategies(dict(strategies)).values():
        need = max(need, int(synthetic_class_counts(real_labels, strategy, n_classes).max(initial=0)))
    return need


def _last_monitor_row(losses: Any) -> dict[str, float | None]:
    """The sample monitor's values at the last iteration it ran (None when it never did)."""
    rows = losses.dropna(subset=["nn_ratio"])
    if rows.empty:
        return {c: None for c in MONITOR_COLUMNS}
    last = rows.iloc[-1]
    return {"iteration": int(last["iteration"]), **{c: (None if np.isnan(last[c]) else float(last[c])) for c in MONITOR_COLUMNS}}


def run_gan_fold(
    volumes_path: str | Path,
    index_path: str | Path,
    splits_path: str | Path,
    fold: int,
    gan_config: Mapping[str, Any],
    classes: Sequence[str],
    image_size: int,
    strategies: Mapping[str, Any],
    outdir: str | Path,
    checkpoint_dir: str | Path,
    log: TextIO | None = None,
    device: str | None = None,
    judge: Judge | None = None,
    repeat: int = 0,
) -> dict[str, Any]:
    """Train the GAN of fold ``fold`` of repeat ``repeat`` and write its outputs into ``outdir``.

    Args:
        volumes_path, index_path: the stacked dataset.
        splits_path: ``splits.json``; only the fold's ``train`` subjects are used.
        fold: outer fold number (within its repeat).
        gan_config: the config's ``gan`` section; its ``seed`` is the base that
            :func:`brainaug.splits.repeat_seed` turns into the repeat's seed.
        classes: class names in label order.
        image_size: S of the dataset's volumes.
        strategies: the config's ``strategies`` (sets the synthetic pool size).
        outdir: ``results/gan/repeat{r}/fold{k}``: generator.pt, losses.tsv, samples.png,
            synthetic.npz, synthetic/*.nii.gz, metrics.json.
        checkpoint_dir: resume point, outside the rule's outputs.
        log: progress stream.
        device: training device (default: CUDA when available).
        judge: predicts labels of volumes; scores the samples while training
            (:mod:`brainaug.gan.monitor`). Must have been fitted on this fold's
            training subjects only.
        repeat: cross-validation repeat.

    Returns:
        The metrics written to ``metrics.json``.
    """
    started = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    roles = fold_roles(read_splits(splits_path), fold, splits_path, repeat=repeat)
    train_subjects = sorted(roles["train"])
    heldout_subjects = sorted(roles["val"] | roles["test"])

    array, index = load_dataset(volumes_path, index_path)
    if array.shape[1:] != (image_size,) * 3:
        raise ValueError(f"{volumes_path} holds {array.shape[1:]} volumes, expected {image_size}^3")
    real, real_labels, real_rows = select_subjects(array, index, train_subjects)
    if len(real) == 0:
        raise ValueError(f"Fold {fold} of repeat {repeat} has no training scans in {index_path}")

    settings = GANSettings.from_config({**dict(gan_config), "image_size": image_size})
    settings = settings.replace(seed=repeat_seed(settings.seed, repeat))
    monitor = SampleMonitor(real, list(classes), judge, n_per_class=8, seed=settings.seed + 1000 * fold + 1)
    result = train_gan(
        real, real_labels, list(classes), settings, workdir=checkpoint_dir, log=log, device=device, monitor=monitor
    )

    generator = result.gan.generator
    n_per_class = synthetic_pool_size(real_labels, strategies, len(classes), settings.n_synthetic_per_class)
    validation, _, _ = select_subjects(array, index, sorted(roles["val"]))

    def draw(round_: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        # Round 0 is the ungated draw; later rounds only replace rejected volumes.
        return synthesize(generator, list(classes), n, seed=settings.seed + 1000 * fold + 7919 * round_)

    gate = draw_through_gate(
        draw, real, reference_distance(real, validation), settings.memorization_threshold, len(classes),
        n_per_class, where=f"repeat {repeat}, fold {fold}: ",
    )
    synthetic, synthetic_labels = gate.volumes, gate.labels
    save_synthetic(outdir, synthetic, synthetic_labels, list(classes), grid_affine(image_size))
    save_generator(outdir / "generator.pt", generator, result.settings, list(classes))
    with atomic_output(outdir / "losses.tsv") as tmp:
        result.losses.to_csv(tmp, sep="\t", index=False)
    plot_real_vs_synthetic(real, real_labels, synthetic, synthetic_labels, list(classes), outdir / "samples.png")

    heldout, heldout_labels, _ = select_subjects(array, index, heldout_subjects)
    quality = gan_quality(
        real, real_labels, synthetic, synthetic_labels, heldout, heldout_labels, list(classes), seed=settings.seed,
        **QualitySettings.from_config(gan_config.get("quality")).kwargs(),
    )
    metrics = {
        "repeat": int(repeat),
        "fold": fold,
        # Recorded, then checked against splits.json before any table is written.
        "train_subjects": train_subjects,
        "train_scans": real_rows["scan_id"].tolist(),
        "n_synthetic_per_class": n_per_class,
        "memorization_gate": {
            "threshold": gate.threshold,
            "reference_distance": gate.reference,
            "n_drawn": gate.n_drawn,
            "n_rejected": gate.n_rejected,
            "n_rejected_per_class": dict(zip(map(str, classes), gate.n_rejected_per_class)),
        },
        "monitor": _last_monitor_row(result.losses),
        "iterations": result.settings.iterations,
        "resumed_from": result.resumed_from,
        "device": str(result.device),
        "settings": result.settings.to_dict(),
        "seconds": round(time.perf_counter() - started, 2),
        "quality": quality,
    }
    with atomic_output(outdir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    return metrics
