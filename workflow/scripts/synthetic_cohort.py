"""Rule synthetic_cohort: write the embedded synthetic BIDS cohort."""

from brainaug.cohort.synthetic import make_synthetic_cohort
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    settings = snakemake.params.settings
    out = make_synthetic_cohort(
        snakemake.output[0],
        n_per_class=settings["n_per_class"],
        classes=tuple(snakemake.params.classes),
        seed=settings["seed"],
        skull_probability=settings["skull_probability"],
    )
    log.info("wrote synthetic cohort to %s", out)
