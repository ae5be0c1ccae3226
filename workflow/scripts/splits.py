"""Rule splits: subject-level stratified folds with a validation share, for every cross-validation repeat."""

from brainaug.cohort import read_cohort
from brainaug.splits import check_splits, make_splits, write_splits
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    cohort = read_cohort(snakemake.input.table)
    cv = snakemake.params.cv
    splits = make_splits(
        cohort, n_folds=cv["n_folds"], val_fraction=cv["val_fraction"], seed=cv["seed"], repeats=cv["repeats"]
    )
    check_splits(splits, cohort)
    write_splits(splits, snakemake.output.splits)
    for fold in splits["folds"]:
        log.info(
            "repeat %d fold %d: %d train, %d val, %d test subjects",
            fold["repeat"], fold["fold"], len(fold["train"]), len(fold["val"]), len(fold["test"]),
        )
