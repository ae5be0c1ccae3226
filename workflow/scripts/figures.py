"""Rule figures: strategy comparison, confusion matrices, learning curves, GAN samples and losses."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from brainaug.dataset import load_dataset, select_subjects
from brainaug.gan.synthesize import load_synthetic
from brainaug.results import figures
from brainaug.splits import fold_roles, read_splits
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    out = snakemake.output
    classes = snakemake.params.classes
    figures.plot_strategy_comparison(pd.read_csv(snakemake.input.table), out.comparison)

    # The declared runs only: a fold folder left from an earlier config is not one of them.
    repeated = len({r for _, r, _ in snakemake.params.runs}) > 1

    def label(r, k):
        return f"{r}.{k}" if repeated else k

    runs = {}
    for (name, r, k), metrics, history in zip(snakemake.params.runs, snakemake.input.metrics, snakemake.input.histories):
        runs.setdefault(name, []).append((label(r, k), metrics, history))
    confusions = {
        name: sum(np.asarray(json.loads(Path(m).read_text())["test"]["confusion_matrix"]) for _, m, _ in folds)
        for name, folds in runs.items()
    }
    histories = {name: {key: pd.read_csv(h, sep="\t") for key, _, h in folds} for name, folds in runs.items()}
    figures.plot_confusion_matrices(confusions, classes, out.confusion)
    figures.plot_learning_curves(histories, out.curves)

    losses = {label(r, k): pd.read_csv(p, sep="\t") for (r, k), p in zip(snakemake.params.gan_runs, snakemake.input.losses)}
    figures.plot_gan_losses(losses, out.gan_losses)
    figures.plot_gan_monitor(losses, out.gan_monitor, n_classes=len(classes))

    array, index = load_dataset(snakemake.input.volumes, snakemake.input.index)
    # Repeat 0, fold 0: the GAN whose pool is this rule's `synthetic` input.
    train = sorted(fold_roles(read_splits(snakemake.input.splits), 0, snakemake.input.splits, repeat=0)["train"])
    real, real_labels, _ = select_subjects(array, index, train)
    synthetic, synthetic_labels, _ = load_synthetic(snakemake.input.synthetic)
    figures.plot_real_vs_synthetic(real, real_labels, synthetic, synthetic_labels, classes, out.real_vs_synthetic)
    log.info("figures written")
