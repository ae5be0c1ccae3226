"""Rule gan_figures: GAN losses per fold and real against synthetic volumes (fold 0)."""

import pandas as pd

from brainaug.dataset import load_dataset, select_subjects
from brainaug.gan.synthesize import load_synthetic
from brainaug.results import figures
from brainaug.splits import read_splits
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    out = snakemake.output
    losses = {k: pd.read_csv(p, sep="\t") for k, p in enumerate(snakemake.input.losses)}
    figures.plot_gan_losses(losses, out.gan_losses)

    array, index = load_dataset(snakemake.input.volumes, snakemake.input.index)
    train = read_splits(snakemake.input.splits)["folds"][0]["train"]
    real, real_labels, _ = select_subjects(array, index, train)
    synthetic, synthetic_labels, _ = load_synthetic(snakemake.input.synthetic)
    figures.plot_real_vs_synthetic(
        real, real_labels, synthetic, synthetic_labels, snakemake.params.classes, out.real_vs_synthetic
    )
    log.info("GAN figures written")
