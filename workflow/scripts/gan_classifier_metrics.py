"""Rule gan_classifier_metrics: judge a (repeat, fold)'s GAN with its real-data classifier."""

import json

from brainaug.classify.predict import load_classifier
from brainaug.dataset import load_dataset, select_subjects
from brainaug.gan.synthesize import load_synthetic
from brainaug.io import atomic_output
from brainaug.results.gan_classifier import classifier_gan_metrics
from brainaug.splits import fold_roles, read_splits
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    fold, repeat = int(snakemake.wildcards.fold), int(snakemake.wildcards.repeat)
    model, checkpoint = load_classifier(snakemake.input.model)
    array, index = load_dataset(snakemake.input.volumes, snakemake.input.index)
    roles = fold_roles(read_splits(snakemake.input.splits), fold, snakemake.input.splits, repeat=repeat)
    real, real_labels, _ = select_subjects(array, index, sorted(roles["train"]))
    test, test_labels, _ = select_subjects(array, index, sorted(roles["test"]))
    synthetic, synthetic_labels, _ = load_synthetic(snakemake.input.synthetic)
    metrics = classifier_gan_metrics(
        model, real, real_labels, synthetic, synthetic_labels, list(checkpoint["classes"]),
        test=test, test_labels=test_labels,
    )
    metrics["repeat"], metrics["fold"] = repeat, fold
    with atomic_output(snakemake.output.metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    log.info("%s", metrics)
