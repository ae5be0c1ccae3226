"""Rule train_gan: the alpha-GAN of one (repeat, outer fold) (resumes from its checkpoint)."""

from pathlib import Path

import numpy as np

from brainaug.classify.predict import load_classifier, predict_proba
from brainaug.device import set_threads
from brainaug.gan.fold import run_gan_fold
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    set_threads(snakemake.threads)
    judge = None
    if snakemake.input.get("judge"):
        model, _ = load_classifier(snakemake.input.judge)

        def judge(volumes: np.ndarray) -> np.ndarray:
            return predict_proba(model, volumes).argmax(axis=1)

    metrics = run_gan_fold(
        volumes_path=snakemake.input.volumes,
        index_path=snakemake.input.index,
        splits_path=snakemake.input.splits,
        fold=int(snakemake.wildcards.fold),
        repeat=int(snakemake.wildcards.repeat),
        gan_config=snakemake.params.gan,
        classes=snakemake.params.classes,
        image_size=snakemake.params.image_size,
        strategies=snakemake.params.strategies,
        outdir=Path(snakemake.output.metrics).parent,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        log=log.stream,
        judge=judge,
    )
    log.info(
        "GAN of repeat %s fold %s trained on %d subjects in %.1f s",
        snakemake.wildcards.repeat, snakemake.wildcards.fold, len(metrics["train_subjects"]), metrics["seconds"],
    )
