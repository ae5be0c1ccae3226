"""Rule preprocess: one scan to image_size^3 in MNI space, with its QC picture and row."""

import json
import os

from brainaug.preprocess.pipeline import PreprocessSettings, preprocess_file
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    # exclude_qc_outliers concerns the dataset rule, not how one scan is processed.
    section = {k: v for k, v in snakemake.params.settings.items() if k != "exclude_qc_outliers"}
    settings = PreprocessSettings.from_config(section)
    row = preprocess_file(
        snakemake.input.image,
        snakemake.output.volume,
        snakemake.output.qc_png,
        size=settings.image_size,
        settings=settings,
    )
    row = {"scan_id": snakemake.wildcards.scan, "image": str(snakemake.input.image), **row}
    tmp = snakemake.output.qc_row + ".tmp"
    with open(tmp, "w") as f:
        json.dump(row, f, indent=1, default=float)
    os.replace(tmp, snakemake.output.qc_row)
    log.info("%s", row)
