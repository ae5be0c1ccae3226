"""Controls in the workflow: a standard-only run plans no GAN; shuffled labels reach the cohort table.

The runs themselves (shuffled labels at chance, exaggerated atrophy near 100 %)
take minutes each and live in ``benchmarks/controls.py``; here only what a
dry run and the ``cohort`` checkpoint show, in seconds.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from brainaug_testing import load_test_module

from brainaug.cohort import read_cohort
from brainaug.controls import shuffle_subject_labels

pytestmark = pytest.mark.slow

helpers = load_test_module("workflow/helpers.py")

STANDARD_ONLY = {"standard": {"synthetic_share": 0.0, "classic_augmentation": False}}


def _job_counts(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table of a dry run as ``{rule: count}``."""
    stats = output[output.index("Job stats:") :]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)\s*$", stats.split("\ntotal")[0], flags=re.M)}


def test_a_run_without_synthetic_strategies_plans_no_gan(tmp_path) -> None:
    """Strategies with synthetic share 0 only: no GAN is trained and no GAN output is asked for."""
    config = helpers.write_config(tmp_path / "standard.yaml", {"strategies": STANDARD_ONLY, "cv": {"n_folds": 3}})
    run = helpers.run_workflow(tmp_path / "work", config, extra_args=["-n"], timeout=300)
    assert run.returncode == 0, run.describe()
    counts = _job_counts(run.output)
    assert counts["train_classifier"] == 3
    assert not {"train_gan", "gan_classifier_metrics", "gan_quality_table", "gan_figures"} & set(counts), counts
    assert {"results_table", "figures", "resource_summary"} <= set(counts)
    assert "gan/fold" not in run.output and "gan_quality.csv" not in run.output

    # With the default strategies the same cohort plans a GAN per fold.
    default = helpers.write_config(tmp_path / "default.yaml", {"cv": {"n_folds": 3}})
    run = helpers.run_workflow(tmp_path / "work2", default, extra_args=["-n"], timeout=300)
    assert run.returncode == 0, run.describe()
    counts = _job_counts(run.output)
    assert counts["train_gan"] == 3 and counts["gan_quality_table"] == 1 and counts["gan_figures"] == 1


def test_shuffled_labels_are_written_to_the_cohort_table(tmp_path) -> None:
    """The cohort checkpoint shuffles per subject, so splits, GAN and classifiers see only those labels."""
    rows = helpers.make_manifest_rows(tmp_path, classes=("CN", "AD"), subjects_per_class=4)
    manifest = helpers.write_manifest(tmp_path / "manifest.tsv", rows)
    tables = {}
    for shuffle in (False, True):
        config = helpers.manifest_config(manifest, controls={"shuffle_labels": shuffle, "seed": 1})
        configfile = helpers.write_config(tmp_path / f"shuffle_{shuffle}.yaml", config)
        run = helpers.run_workflow(tmp_path / f"work_{shuffle}", configfile, targets=["results/cohort.tsv"], timeout=300)
        assert run.returncode == 0, run.describe()
        tables[shuffle] = read_cohort(run.results / "cohort.tsv")
    assert "CONTROL RUN" in (tmp_path / "work_True" / "logs" / "cohort" / "cohort.log").read_text(encoding="utf-8")
    expected = shuffle_subject_labels(tables[False], seed=1)
    pd.testing.assert_frame_equal(tables[True], expected)
    assert not tables[True]["diagnosis"].equals(tables[False]["diagnosis"])
    assert tables[True]["diagnosis"].value_counts().to_dict() == {"CN": 4, "AD": 4}
