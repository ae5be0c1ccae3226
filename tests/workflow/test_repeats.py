"""Repeated cross-validation in the workflow: cv.repeats = 2 plans one GAN per (repeat, fold)
and one classifier per (strategy, repeat, fold), from one splits.json that lists both repeats.

Cheap: a 2-class manifest cohort of 6 blob scans, only the cohort and splits rules run;
everything after them is a dry run (``-n``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STRATEGIES = 5  # the schema's default strategies


def test_two_repeats_plan_a_gan_per_repeat_and_fold(tmp_path: Path, workflow_helpers) -> None:
    rows = workflow_helpers.make_manifest_rows(tmp_path, classes=("CN", "AD"), subjects_per_class=3)
    manifest = workflow_helpers.write_manifest(tmp_path / "manifest.tsv", rows)
    config = workflow_helpers.manifest_config(manifest, n_folds=2, cv={"repeats": 2, "seed": 4})
    configfile = workflow_helpers.write_config(tmp_path / "cfg.yaml", config)
    work = tmp_path / "work"

    run = workflow_helpers.run_workflow(work, configfile, targets=["results/splits.json"], timeout=300)
    assert run.returncode == 0, run.describe()
    splits = json.loads((work / "results" / "splits.json").read_text(encoding="utf-8"))
    assert splits["repeats"] == 2 and splits["n_folds"] == 2
    assert [(f["repeat"], f["fold"]) for f in splits["folds"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert splits["repeat_seeds"][0] == 4 and splits["repeat_seeds"][1] != 4
    for r in (0, 1):
        tested = sorted(s for f in splits["folds"] if f["repeat"] == r for s in f["test"])
        assert tested == sorted(row["subject_id"] for row in rows)

    run = workflow_helpers.run_workflow(work, configfile, extra_args=["-n"], timeout=300)
    assert run.returncode == 0, run.describe()
    counts = dict(re.findall(r"^(train_gan|train_classifier|gan_classifier_metrics)\s+(\d+)\s*$", run.output, flags=re.M))
    assert counts == {"train_gan": "4", "train_classifier": str(STRATEGIES * 4), "gan_classifier_metrics": "4"}, (
        run.output[-3000:]
    )
    for r in (0, 1):
        for k in (0, 1):
            assert f"results/gan/repeat{r}/fold{k}/metrics.json" in run.output
            assert f"results/classify/gan50/repeat{r}/fold{k}/metrics.json" in run.output
