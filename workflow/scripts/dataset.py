"""Rule dataset: stack the preprocessed volumes into one memory-mappable array."""

from pathlib import Path

import pandas as pd

from brainaug.dataset import build_dataset
from brainaug.template import grid_affine
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    cohort = pd.read_csv(snakemake.input.table, sep="\t", dtype=str)
    paths = {Path(p).name.removesuffix(".nii.gz"): p for p in snakemake.input.volumes}
    exclude = []
    if snakemake.params.exclude_qc_outliers:
        qc = pd.read_csv(snakemake.input.qc, sep="\t", dtype={"scan_id": str})
        exclude = qc.loc[qc["outlier"].astype(bool), "scan_id"].tolist()
        log.info("leaving out %d QC outliers: %s", len(exclude), exclude)
    size = snakemake.params.image_size
    index = build_dataset(
        cohort, paths, size, snakemake.output.volumes, snakemake.output.index,
        expected_affine=grid_affine(size), exclude=exclude,
    )
    log.info("stacked %d volumes of %d^3", len(index), size)
