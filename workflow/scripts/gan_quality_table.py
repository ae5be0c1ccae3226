"""Rule gan_quality_table: one row per (repeat, fold) of GAN quality (voxel and classifier metrics)."""

import json

import pandas as pd

from brainaug.io import atomic_output
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    rows = []
    runs = zip(snakemake.params.gan_runs, snakemake.input.metrics, snakemake.input.classifier_metrics)
    for (r, k), quality_path, clf_path in runs:
        quality = json.load(open(quality_path))
        clf = json.load(open(clf_path))
        overall = quality["quality"]["overall"]
        row = {"repeat": int(r), "fold": int(k), "n_train_subjects": len(quality["train_subjects"])}
        row.update({key: overall[key] for key in ("mmd", "ms_ssim_synthetic", "ms_ssim_real", "memorization_ratio")})
        row["n_rejected_memorization"] = quality["memorization_gate"]["n_rejected"]
        row["frechet_distance"] = clf["frechet_distance"]
        # Label fidelity: the judge on samples of each intended diagnosis, and on the
        # fold's real test scans for scale (chance is 1 / number of classes).
        row["judge_bacc_synthetic"] = clf["synthetic_balanced_accuracy"]
        row["judge_bacc_real_test"] = clf["test_balanced_accuracy"]
        row["fidelity_ratio"] = (
            clf["synthetic_balanced_accuracy"] / clf["test_balanced_accuracy"] if clf["test_balanced_accuracy"] else None
        )
        row["synthetic_accuracy"] = clf["synthetic_accuracy"]
        for name, per_class in clf["per_class"].items():
            row[f"synthetic_accuracy_{name}"] = per_class["synthetic_accuracy"]
        rows.append(row)
    table = pd.DataFrame(rows)
    # Summary rows over every GAN of every repeat: repeat "all", fold "mean" / "sd".
    summary = table.drop(columns=["repeat", "fold"]).agg(["mean", "std"]).assign(repeat="all", fold=["mean", "sd"])
    table = pd.concat([table.astype({"repeat": str, "fold": str}), summary[table.columns]], ignore_index=True)
    with atomic_output(snakemake.output.csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
    log.info("\n%s", table.to_string(index=False))
