"""The whole workflow on the tiny config: every stage's outputs, the leakage
guards, the table, the report, and the study config's DAG."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from brainaug.gan.monitor import MONITOR_COLUMNS
from brainaug.gan.train import LOSS_COLUMNS
from brainaug.template import grid_affine

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ["standard", "standard_aug", "gan33", "gan50", "gan50_aug"]
N_FOLDS = 3


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_cohort_preprocessing_and_qc(tiny_run):
    results = tiny_run.results
    cohort = pd.read_csv(results / "cohort.tsv", sep="\t")
    assert len(cohort) == 18 and sorted(cohort["diagnosis"].unique()) == ["AD", "CN", "MCI"]
    qc = pd.read_csv(results / "qc" / "summary.tsv", sep="\t")
    assert set(qc["scan_id"]) == set(cohort["scan_id"])
    assert qc["correlation"].min() > 0.5
    for scan in cohort["scan_id"]:
        image = nib.load(str(results / "preprocessed" / f"{scan}.nii.gz"))
        data = np.asarray(image.dataobj)
        assert data.shape == (16, 16, 16)
        assert np.allclose(image.affine, grid_affine(16), atol=1e-4)
        assert data.min() == -1.0 and data.max() <= 1.0
        assert (results / "qc" / f"{scan}.png").stat().st_size > 1000
    volumes = np.load(results / "dataset" / "volumes.npy", mmap_mode="r")
    assert volumes.shape == (18, 16, 16, 16)


def test_gan_trains_on_its_folds_training_subjects_only(tiny_run):
    results = tiny_run.results
    splits = _json(results / "splits.json")
    assert splits["repeats"] == 1 and [f["repeat"] for f in splits["folds"]] == [0] * N_FOLDS
    for fold in splits["folds"]:
        k = fold["fold"]
        gan = _json(results / "gan" / "repeat0" / f"fold{k}" / "metrics.json")
        assert sorted(gan["train_subjects"]) == sorted(fold["train"])
        assert not set(gan["train_subjects"]) & (set(fold["val"]) | set(fold["test"]))
        with np.load(results / "gan" / "repeat0" / f"fold{k}" / "synthetic.npz") as syn:
            assert syn["volumes"].shape[1:] == (16, 16, 16)
            assert np.isfinite(syn["volumes"]).all() and np.abs(syn["volumes"]).max() <= 1.0
            assert sorted(set(syn["labels"].tolist())) == [0, 1, 2]
        niftis = sorted((results / "gan" / "repeat0" / f"fold{k}" / "synthetic").glob("*.nii.gz"))
        assert len(niftis) == len(np.load(results / "gan" / "repeat0" / f"fold{k}" / "synthetic.npz")["labels"])
        losses = pd.read_csv(results / "gan" / "repeat0" / f"fold{k}" / "losses.tsv", sep="\t")
        assert len(losses) == 6 and np.isfinite(losses[list(LOSS_COLUMNS)].to_numpy()).all()
        # The sample monitor scored the last iteration, the judge included.
        assert np.isfinite(losses[list(MONITOR_COLUMNS)].iloc[-1].to_numpy()).all()
        # The resume point lives outside the rule's outputs.
        assert (results / "checkpoints" / "gan" / "repeat0" / f"fold{k}" / "checkpoint.pt").exists()


def test_classifiers_keep_validation_and_test_real_and_apart(tiny_run):
    results = tiny_run.results
    splits = {f["fold"]: f for f in _json(results / "splits.json")["folds"]}
    for strategy in STRATEGIES:
        for k in range(N_FOLDS):
            m = _json(results / "classify" / strategy / "repeat0" / f"fold{k}" / "metrics.json")
            assert sorted(m["test_subjects"]) == sorted(splits[k]["test"])
            assert sorted(m["val_subjects"]) == sorted(splits[k]["val"])
            assert set(m["train_subjects"]) <= set(splits[k]["train"])
            if strategy.startswith("gan"):
                assert m["n_synthetic_train"] > 0
            else:
                assert m["n_synthetic_train"] == 0
            if strategy == "gan50":
                assert m["n_synthetic_train"] == m["n_real_train"]
            predictions = pd.read_csv(results / "classify" / strategy / "repeat0" / f"fold{k}" / "predictions.tsv", sep="\t")
            assert set(predictions["split"]) == {"val", "test"}
            probs = predictions[[f"prob_{c}" for c in ("CN", "MCI", "AD")]].to_numpy()
            assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_table_and_figures(tiny_run):
    results = tiny_run.results
    table = pd.read_csv(results / "tables" / "augmentation_comparison.csv")
    assert table["strategy"].tolist() == STRATEGIES
    assert list(table.columns[:5]) == ["strategy", "val_accuracy", "val_accuracy_sd", "test_accuracy", "test_accuracy_sd"]
    assert {"difference_vs_baseline", "difference_ci_low", "t_vs_baseline", "p_vs_baseline", "p_holm"} <= set(table.columns)
    assert (table["n_folds"] == N_FOLDS).all() and (table["n_repeats"] == 1).all()
    per_fold = pd.read_csv(results / "tables" / "per_fold.tsv", sep="\t")
    for strategy in STRATEGIES:
        rows = per_fold[per_fold["strategy"] == strategy]
        assert table.set_index("strategy").loc[strategy, "test_accuracy"] == pytest.approx(rows["test_accuracy"].mean())
    assert (results / "tables" / "augmentation_comparison.tex").read_text(encoding="utf-8").count("\\\\") >= len(STRATEGIES)
    gan_quality = pd.read_csv(results / "tables" / "gan_quality.csv")
    assert {"repeat", "fold", "mmd", "memorization_ratio", "frechet_distance", "synthetic_accuracy"} <= set(gan_quality.columns)
    assert gan_quality["fold"].astype(str).tolist() == [str(k) for k in range(N_FOLDS)] + ["mean", "sd"]
    resources = pd.read_csv(results / "tables" / "resources.tsv", sep="\t")
    assert {"train_gan", "train_classifier", "preprocess"} <= set(resources["stage"])
    for name in ("strategy_comparison", "confusion_matrices", "learning_curves", "real_vs_synthetic", "gan_losses", "qc_montage"):
        assert (results / "figures" / f"{name}.png").stat().st_size > 5000


def test_rerun_has_nothing_to_do(tiny_run, workflow_helpers):
    run = workflow_helpers.run_workflow(tiny_run.workdir, ROOT / "tests" / "workflow" / "tiny.yaml", extra_args=["-n"])
    assert run.returncode == 0, run.describe()
    assert "Nothing to be done" in run.output


def test_resource_edit_reruns_nothing(tiny_run, workflow_helpers, tmp_path):
    """Resources place jobs; they are no input of any result, so editing them re-runs no job."""
    config = yaml.safe_load((ROOT / "tests" / "workflow" / "tiny.yaml").read_text(encoding="utf-8"))
    config["resources"] = {
        "preprocess": {"mem_mb": 3100, "runtime": 21},
        "gan": {"mem_mb": 4100, "runtime": 61},
        "classifier": {"mem_mb": 4100, "runtime": 61},
    }
    edited = workflow_helpers.write_config(tmp_path / "resources.yaml", config)
    run = workflow_helpers.run_workflow(tiny_run.workdir, edited, extra_args=["-n"])
    assert run.returncode == 0, run.describe()
    assert "Nothing to be done" in run.output, run.output[-3000:]


def test_report_is_self_contained_html(tiny_run, workflow_helpers):
    report = tiny_run.workdir / "report.html"
    run = workflow_helpers.run_workflow(
        tiny_run.workdir, ROOT / "tests" / "workflow" / "tiny.yaml", extra_args=["--report", str(report)], timeout=300
    )
    assert run.returncode == 0, run.describe()
    html = report.read_text(encoding="utf-8")
    assert "augmentation_comparison.csv" in html and "real_vs_synthetic.png" in html


def test_leakage_stops_the_table(tiny_run, workflow_helpers, tmp_path):
    """A GAN that saw a test subject makes the table rule refuse to report."""
    work = tmp_path / "leaky"
    shutil.copytree(tiny_run.workdir, work, symlinks=True, ignore=shutil.ignore_patterns(".snakemake"))
    results = work / "results"
    splits = _json(results / "splits.json")
    gan_path = results / "gan" / "repeat0" / "fold1" / "metrics.json"
    gan = _json(gan_path)
    leaked = splits["folds"][1]["test"][0]
    gan["train_subjects"].append(leaked)
    gan_path.write_text(json.dumps(gan))
    (results / "tables" / "augmentation_comparison.csv").unlink()
    run = workflow_helpers.run_workflow(
        work, ROOT / "tests" / "workflow" / "tiny.yaml", targets=["results/tables/augmentation_comparison.csv"],
        extra_args=["--rerun-triggers", "mtime", "--allowed-rules", "results_table"],
    )
    assert run.returncode != 0
    assert "LeakageError" in run.output and leaked in run.output
    assert not (results / "tables" / "augmentation_comparison.csv").exists()


def test_study_config_is_dry_runnable(tiny_run, workflow_helpers, tmp_path):
    """config/study.yaml plans 6 GANs at 64^3 and 30 classifier runs on a cohort like ADNI's layout."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ADNI_BIDS").symlink_to(tiny_run.results / "synthetic_cohort")
    study = tmp_path / "study.yaml"
    text = (ROOT / "config" / "study.yaml").read_text(encoding="utf-8").replace("label_column: diagnosis_sc", "label_column: diagnosis")
    # The synthetic cohort has 6 subjects per class: enough for 6 folds.
    study.write_text(text)
    # The cohort checkpoint must exist before Snakemake can plan the per-scan jobs.
    run = workflow_helpers.run_workflow(tmp_path, study, targets=["results/cohort.tsv"], timeout=300)
    assert run.returncode == 0, run.describe()
    run = workflow_helpers.run_workflow(tmp_path, study, extra_args=["-n"], timeout=300)
    assert run.returncode == 0, run.describe()
    counts = dict(re.findall(r"^(train_gan|train_classifier|preprocess)\s+(\d+)\s*$", run.output, flags=re.M))
    assert counts == {"preprocess": "18", "train_gan": "6", "train_classifier": "30"}, run.output[-3000:]


def test_two_repeats_run_through_to_the_table_figures_and_front_page(tiny_run, workflow_helpers, tmp_path):
    """cv.repeats: 2 on the tiny run's preprocessed scans: every repeated path past the splits runs.

    The figures label runs by (repeat, fold) and the front page says how often each
    subject was tested; a plan-only test (tests/workflow/test_repeats.py) reaches neither.
    """
    work = tmp_path / "repeated"
    shutil.copytree(tiny_run.workdir, work, symlinks=True)  # .snakemake and file times too: no re-preprocessing
    config = yaml.safe_load((ROOT / "tests" / "workflow" / "tiny.yaml").read_text(encoding="utf-8"))
    config["cv"]["repeats"] = 2
    config["strategies"] = {
        "standard": {"synthetic_share": 0.0, "classic_augmentation": False},
        "gan50": {"synthetic_share": 0.5, "classic_augmentation": False},
    }
    run = workflow_helpers.run_workflow(work, workflow_helpers.write_config(tmp_path / "repeated.yaml", config), timeout=900)
    assert run.returncode == 0, run.describe()
    assert "rule preprocess:" not in run.output  # the copied scans were reused
    results = work / "results"
    table = pd.read_csv(results / "tables" / "augmentation_comparison.csv")
    assert table["strategy"].tolist() == ["standard", "gan50"]
    assert (table["n_repeats"] == 2).all() and (table["n_folds"] == 2 * N_FOLDS).all()
    page = (results / "report" / "front_page.html").read_text(encoding="utf-8")
    assert f"Each subject was tested 2 times (2 repeats of {N_FOLDS} folds)" in page
    assert f"{2 * N_FOLDS} GAN(s), one per repeat and fold" in page
    for name in ("learning_curves", "gan_fidelity", "gan_losses", "strategy_comparison"):
        assert (results / "figures" / f"{name}.png").stat().st_size > 5000
