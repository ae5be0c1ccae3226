"""Rule resource_summary: per-stage time and memory from the benchmark records."""

import os

from brainaug.resource_usage import summarise_benchmarks
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    table = summarise_benchmarks(snakemake.params.benchmark_dir)
    tmp = snakemake.output.table + ".tmp"
    table.to_csv(tmp, sep="\t", index=False)
    os.replace(tmp, snakemake.output.table)
    log.info("\n%s", table.to_string(index=False))
