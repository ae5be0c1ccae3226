"""Rule figures: strategy comparison, confusion matrices, learning curves, GAN samples and losses."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from brainaug.dataset import load_dataset, select_subjects
from brainaug.gan.synthesize import load_synthetic
from brainaug.results import figures
from brainaug.splits import read_splits
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    out = snakemake.output
    classes = snakemake.params.classes
    figures.plot_strategy_comparison(pd.read_csv(snakemake.input.table), out.comparison)

    # The declared runs only: a fold folder left from an earlier config is not one of them.
    runs = {}
    for (name, _), metrics, history in zip(snakemake.params.runs, snakemake.input.metrics, snakemake.input.histories):
        runs.setdefault(name, []).append((metrics, history))
    confusions = {
        name: sum(np.asarray(json.loads(Path(m).read_text())["test"]["confusion_matrix"]) for m, _ in folds)
        for name, folds in runs.items()
    }
    histories = {name: [pd.read_csv(h, sep="\t") for _, h in folds] for name, folds in runs.items()}
    figures.plot_confusion_matrices(confusions, classes, out.confusion)
    figures.plot_learning_curves(histories, out.curves)

    losses = {k: pd.read_csv(p, sep="\t") for k, p in enumerate(snakemake.input.losses)}
    figures.plot_gan_losses(losses, out.gan_losses)
    figures.plot_gan_monitor(losses, out.gan_monitor, n_classes=len(classes))

    array, index = load_dataset(snakemake.input.volumes, snakemake.input.index)
    train = read_splits(snakemake.input.splits)["folds"][0]["train"]
    real, real_labels, _ = select_subjects(array, index, train)
    synthetic, synthetic_labels, _ = load_synthetic(snakemake.input.synthetic)
    figures.plot_real_vs_synthetic(real, real_labels, synthetic, synthetic_labels, classes, out.real_vs_synthetic)
    log.info("figures written")
