"""Helpers of the SLURM test harness (tests/slurm/cluster.py).

The cluster itself is exercised with the real workflow in test_slurm_workflow.py.
"""

from __future__ import annotations

import pytest


def test_parse_submitted_jobs(slurm_helpers):
    text = (
        "Job 0 has been submitted with SLURM jobid 12 (log: /w/.snakemake/slurm_logs/rule_cpu_step/12.log).\n"
        "Job 3 has been submitted with SLURM jobid 14 (log: /w/.snakemake/slurm_logs/rule_train_gan/fold=1/14.log).\n"
        "Job 4 has been submitted with SLURM jobid 15 (log: /w/.snakemake/slurm_logs/rule_train_gan/fold=2/15.log).\n"
    )
    assert slurm_helpers.parse_submitted_jobs(text) == {"cpu_step": ["12"], "train_gan": ["14", "15"]}


def test_run_snakemake_rejects_bad_timeout(slurm_helpers, tmp_path):
    cluster = slurm_helpers.SlurmCluster(state_dir=tmp_path, node="x", started_here=False)
    with pytest.raises(ValueError, match="timeout_s must be a positive"):
        cluster.run_snakemake(tmp_path, timeout_s=0)
