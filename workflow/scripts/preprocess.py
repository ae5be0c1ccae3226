"""Rule preprocess: one scan to image_size^3 in MNI space, with its QC picture and row."""

import json

from brainaug.preprocess.pipeline import PreprocessSettings, preprocess_file
from brainaug.io import atomic_output
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    settings = PreprocessSettings.from_config(snakemake.params.settings)
    row = preprocess_file(
        snakemake.input.image,
        snakemake.output.volume,
        snakemake.output.qc_png,
        size=settings.image_size,
        settings=settings,
    )
    row = {"scan_id": snakemake.wildcards.scan, "image": str(snakemake.input.image), **row}
    with atomic_output(snakemake.output.qc_row) as tmp:
        tmp.write_text(json.dumps(row, indent=1, default=float), encoding="utf-8")
    log.info("%s", row)
