"""Rule qc_summary: one table of registration QC, outliers flagged, and a montage."""

import json

import nibabel as nib
import numpy as np

from brainaug.preprocess.qc import summarise
from brainaug.results.figures import plot_qc_montage
from brainaug.io import atomic_output
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    rows = [json.load(open(path)) for path in snakemake.input.rows]
    table = summarise(rows, min_correlation=snakemake.params.min_correlation)
    with atomic_output(snakemake.output.summary) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    volumes = [np.asarray(nib.load(p).dataobj, dtype=np.float32) for p in snakemake.input.volumes]
    titles = [f"{r['scan_id']} r={r['correlation']:.2f}" for r in rows]
    plot_qc_montage(volumes, titles, snakemake.output.montage)
    log.info("%d scans, %d flagged", len(table), int(table["outlier"].sum()))
