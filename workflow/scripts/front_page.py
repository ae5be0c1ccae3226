"""Rule front_page: the HTML fragment the report opens on."""

import pandas as pd

from brainaug.results.front_page import write_front_page
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    params = snakemake.params
    # A list (empty when no strategy uses the GAN) from if_gan.
    gan_paths = snakemake.input.gan_quality
    gan_paths = [gan_paths] if isinstance(gan_paths, str) else list(gan_paths)
    gan_quality = pd.read_csv(gan_paths[0], dtype={"repeat": str, "fold": str}) if gan_paths else None
    write_front_page(
        snakemake.output.html,
        table=pd.read_csv(snakemake.input.table),
        figure_png=snakemake.input.figure,
        qc_decisions=pd.read_csv(snakemake.input.decisions, sep="\t", dtype={"scan_id": str}),
        qc_choice=params.qc_outliers,
        classes=list(params.classes),
        baseline=params.baseline,
        control=params.control,
        gan_quality=gan_quality,
        n_classifier_runs=params.n_classifier_runs,
        n_gans=params.n_gans,
    )
    log.info("wrote %s", snakemake.output.html)
