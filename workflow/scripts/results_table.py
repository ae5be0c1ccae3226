"""Rule results_table: leakage checks from recorded subject IDs, then the study's table."""

import json
from pathlib import Path

from brainaug.leakage import check_leakage
from brainaug.results.table import comparison_table, metrics_table, write_table
from brainaug.io import atomic_output
from brainaug.splits import read_splits
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    runs = {(name, int(r), int(k)): path for (name, r, k), path in zip(snakemake.params.runs, snakemake.input.metrics)}
    classify_metrics = {key: json.loads(Path(path).read_text()) for key, path in runs.items()}
    gan_metrics = {
        (int(r), int(k)): json.loads(Path(p).read_text())
        for (r, k), p in zip(snakemake.params.gan_runs, snakemake.input.gan_metrics)
    }
    # Refuses to report if a test or validation subject reached any training.
    check_leakage(read_splits(snakemake.input.splits), classify_metrics, gan_metrics)
    log.info("leakage checks passed for %d classifier runs and %d GANs", len(classify_metrics), len(gan_metrics))
    per_fold = metrics_table(runs)
    table = comparison_table(per_fold, baseline=snakemake.params.baseline, strategies=snakemake.params.strategies)
    control = snakemake.params.control
    if control:
        log.warning("%s", control)
    write_table(table, Path(snakemake.output.csv).parent, control=control)
    with atomic_output(snakemake.output.per_fold) as tmp:
        per_fold.to_csv(tmp, sep="\t", index=False)
    log.info("\n%s", Path(snakemake.output.md).read_text(encoding="utf-8"))
