"""Rule gan_figures: GAN losses and sample monitor per (repeat, fold), real against synthetic volumes (repeat 0, fold 0)."""

import pandas as pd

from brainaug.dataset import load_dataset, select_subjects
from brainaug.gan.synthesize import load_synthetic
from brainaug.results import figures
from brainaug.splits import fold_roles, read_splits
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    out = snakemake.output
    classes = snakemake.params.classes
    repeated = len({r for r, _ in snakemake.params.gan_runs}) > 1
    losses = {
        ((r, k) if repeated else k): pd.read_csv(p, sep="\t")
        for (r, k), p in zip(snakemake.params.gan_runs, snakemake.input.losses)
    }
    figures.plot_gan_losses(losses, out.gan_losses)
    figures.plot_gan_monitor(losses, out.gan_monitor, n_classes=len(classes))

    array, index = load_dataset(snakemake.input.volumes, snakemake.input.index)
    # Repeat 0, fold 0: the GAN whose pool is this rule's `synthetic` input.
    train = sorted(fold_roles(read_splits(snakemake.input.splits), 0, snakemake.input.splits, repeat=0)["train"])
    real, real_labels, _ = select_subjects(array, index, train)
    synthetic, synthetic_labels, _ = load_synthetic(snakemake.input.synthetic)
    figures.plot_real_vs_synthetic(real, real_labels, synthetic, synthetic_labels, classes, out.real_vs_synthetic)
    log.info("GAN figures written")
