"""Rule resource_summary: per-stage time and memory from the benchmark records."""


from brainaug.resource_usage import summarise_benchmarks
from brainaug.io import atomic_output
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    table = summarise_benchmarks(snakemake.params.benchmark_dir)
    with atomic_output(snakemake.output.table) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    log.info("\n%s", table.to_string(index=False))
