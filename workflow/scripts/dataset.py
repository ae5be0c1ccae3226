"""Rule dataset: the last gate before training, then the stacked volumes.

QC outliers are decided here (``preprocess.qc_outliers``: stop, exclude or keep),
and one scan under two subjects is refused, before any GAN or classifier runs.
The QC decisions go to ``qc/decisions.tsv`` for the report.
"""

from pathlib import Path

import pandas as pd

from brainaug.dataset import build_dataset
from brainaug.io import atomic_output
from brainaug.preprocess.qc import decide_outliers
from brainaug.template import grid_affine
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    cohort = pd.read_csv(snakemake.input.table, sep="\t", dtype=str)
    paths = {Path(p).name.removesuffix(".nii.gz"): p for p in snakemake.input.volumes}
    qc = pd.read_csv(snakemake.input.qc, sep="\t", dtype={"scan_id": str})
    decisions = decide_outliers(qc, snakemake.params.qc_outliers, snakemake.params.min_correlation)
    exclude = decisions.loc[decisions["decision"] == "excluded", "scan_id"].tolist()
    kept = decisions.loc[decisions["decision"] == "kept", "scan_id"].tolist()
    if exclude:
        log.warning("leaving out %d QC-flagged scans (preprocess.qc_outliers: exclude): %s", len(exclude), exclude)
    if kept:
        log.warning("training on %d QC-flagged scans (preprocess.qc_outliers: keep): %s", len(kept), kept)
    hashes = dict(zip(qc["scan_id"], qc["voxel_hash"].fillna(""))) if "voxel_hash" in qc.columns else {}
    size = snakemake.params.image_size
    index = build_dataset(
        cohort, paths, size, snakemake.output.volumes, snakemake.output.index,
        expected_affine=grid_affine(size), exclude=exclude,
        duplicate_correlation=snakemake.params.duplicate_correlation, voxel_hashes=hashes,
    )
    with atomic_output(snakemake.output.decisions) as tmp:
        decisions.to_csv(tmp, sep="\t", index=False)
    log.info("stacked %d volumes of %d^3", len(index), size)
