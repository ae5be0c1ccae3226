"""The real workflow through SLURM: the tiny config end to end, then a GAN job
killed at its time limit and resumed from its checkpoint.

Runs against the local single-node cluster (tests/slurm/start.sh), through
workflow/profiles/slurm-test, exactly as a user runs the study with
workflow/profiles/slurm.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "workflow" / "tiny.yaml"


def test_tiny_workflow_through_slurm_matches_local_run(slurm_cluster, tiny_run, tmp_path):
    work = tmp_path / "slurm"
    config = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    # As on a GPU cluster: the GPU stages ask for one GPU each (results must not change).
    config["resources"] = {"gan": {"gpu": 1}, "classifier": {"gpu": 1}}
    cluster_cfg = tmp_path / "cluster.yaml"
    cluster_cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    run = slurm_cluster.run_snakemake(work, configfile=cluster_cfg, timeout_s=900)
    context = f"{run.log_text[-6000:]}\n{slurm_cluster.log_tail()}"
    assert run.returncode == 0, context

    # Jobs really went through sbatch: the per-scan, GAN and classifier rules got SLURM job IDs.
    assert len(run.job_ids.get("preprocess", [])) == 18, context
    assert len(run.job_ids.get("train_gan", [])) == 3, context
    assert len(run.job_ids.get("train_classifier", [])) == 15, context

    # GPU rules carried the GPU request, CPU rules none.
    gan = slurm_cluster.job_info(run.job_ids["train_gan"][0])
    clf = slurm_cluster.job_info(run.job_ids["train_classifier"][0])
    prep = slurm_cluster.job_info(run.job_ids["preprocess"][0])
    assert gan.get("TresPerJob") == "gres:gpu:1" and clf.get("TresPerJob") == "gres:gpu:1", (gan, clf)
    assert "gpu" not in prep.get("TresPerJob", ""), prep

    # Results equal the local run's.
    local, remote = tiny_run.results, work / "results"
    assert (local / "splits.json").read_text() == (remote / "splits.json").read_text()
    for path in sorted((local / "preprocessed").glob("*.nii.gz")):
        a = np.asarray(nib.load(str(path)).dataobj)
        b = np.asarray(nib.load(str(remote / "preprocessed" / path.name)).dataobj)
        assert np.array_equal(a, b), path.name
    for k in range(3):
        with np.load(local / "gan" / "repeat0" / f"fold{k}" / "synthetic.npz") as a, np.load(remote / "gan" / "repeat0" / f"fold{k}" / "synthetic.npz") as b:
            assert np.array_equal(a["volumes"], b["volumes"]) and np.array_equal(a["labels"], b["labels"])
    table_local = pd.read_csv(local / "tables" / "augmentation_comparison.csv")
    table_remote = pd.read_csv(remote / "tables" / "augmentation_comparison.csv")
    pd.testing.assert_frame_equal(table_local, table_remote)


def test_gan_killed_at_time_limit_resumes_from_checkpoint(slurm_cluster, tiny_run, tmp_path):
    """A GAN job outliving its 1-minute limit is killed by SLURM, reported, and resumed."""
    import shutil

    work = tmp_path / "resume"
    shutil.copytree(tiny_run.workdir, work, symlinks=True, ignore=shutil.ignore_patterns(".snakemake", "report.html"))
    shutil.rmtree(work / "results" / "checkpoints" / "gan" / "repeat0" / "fold0")
    config = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    # Long enough to outlive a 1-minute limit at 16^3, checkpointing often.
    config["gan"].update(iterations=100_000, checkpoint_every=50)
    config["resources"] = {"gan": {"gpu": 1, "runtime": 1}}
    long_cfg = tmp_path / "long.yaml"
    long_cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    target = "results/gan/repeat0/fold0/metrics.json"
    run = slurm_cluster.run_snakemake(work, configfile=long_cfg, targets=[target],
                                      extra_args=["--forcerun", "train_gan"], timeout_s=400)
    context = f"{run.log_text[-6000:]}\n{slurm_cluster.log_tail()}"
    assert run.returncode != 0, context
    job = slurm_cluster.job_info(run.job_ids["train_gan"][0])
    assert job["JobState"] == "TIMEOUT", job
    assert "Error in rule train_gan" in run.log_text, context
    assert not (work / target).exists()
    checkpoint = work / "results" / "checkpoints" / "gan" / "repeat0" / "fold0" / "checkpoint.pt"
    killed_at = int(torch.load(checkpoint, weights_only=True)["step"])
    assert killed_at >= 50, killed_at

    # Re-run with a finishing iteration count: training resumes at the checkpoint.
    config["gan"].update(iterations=killed_at + 10)
    config["resources"] = {"gan": {"gpu": 1, "runtime": 5}}
    long_cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    rerun = slurm_cluster.run_snakemake(work, configfile=long_cfg, targets=[target], timeout_s=300)
    assert rerun.returncode == 0, f"{rerun.log_text[-6000:]}\n{slurm_cluster.log_tail()}"
    metrics = json.loads((work / target).read_text())
    assert metrics["resumed_from"] == killed_at and metrics["iterations"] == killed_at + 10
