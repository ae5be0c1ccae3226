"""Rule synthetic_cohort: write the embedded synthetic BIDS cohort."""

import dataclasses

from brainaug.cohort.synthetic import SyntheticCohortConfig, make_synthetic_cohort
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    settings = SyntheticCohortConfig.from_config({**snakemake.params.settings, "classes": snakemake.params.classes})
    out = make_synthetic_cohort(snakemake.output[0], **dataclasses.asdict(settings), n_jobs=snakemake.threads)
    log.info("wrote synthetic cohort to %s", out)
