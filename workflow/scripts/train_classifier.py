"""Rule train_classifier: one (strategy, repeat, fold) of the cross-validated 3D CNN."""

from pathlib import Path

from brainaug.classify.train import run_fold
from brainaug.device import set_threads
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    set_threads(snakemake.threads)
    synthetic = snakemake.input.synthetic or None
    metrics = run_fold(
        dataset_dir=Path(snakemake.input.volumes).parent,
        splits_path=snakemake.input.splits,
        fold=int(snakemake.wildcards.fold),
        repeat=int(snakemake.wildcards.repeat),
        strategy_name=snakemake.wildcards.strategy,
        cfg={"classifier": snakemake.params.classifier, "strategies": snakemake.params.strategies},
        synthetic_npz=synthetic if synthetic else None,
        outdir=Path(snakemake.output.metrics).parent,
        log=log.stream,
    )
    log.info(
        "val accuracy %.3f, test accuracy %.3f (balanced %.3f)",
        metrics["val"]["accuracy"], metrics["test"]["accuracy"], metrics["test"]["balanced_accuracy"],
    )
