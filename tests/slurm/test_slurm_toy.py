"""The SLURM profile against a real (local, single-node) SLURM cluster.

Runs tests/slurm/toy/Snakefile through workflow/profiles/slurm-test and checks
what a user of the SLURM profile relies on: every rule really goes through
sbatch, the GPU rule carries the GPU request and the CPU rule none, outputs
equal a local run's, a job killed at its time limit is reported as failed, and a
re-run resumes from the checkpoint the killed job left.
"""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

import pytest

TOY = Path(__file__).with_name("toy") / "Snakefile"


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
        cluster.run_snakemake(tmp_path, TOY, timeout_s=0)


@pytest.mark.slurm
@pytest.mark.slow
def test_toy_workflow_through_slurm(slurm_cluster, tmp_path):
    work = tmp_path / "slurm"
    run = slurm_cluster.run_snakemake(
        work, TOY, targets=["out/cpu.txt", "out/gpu.txt", "out/slow.txt"],
        extra_args=["--keep-going"], timeout_s=300,
    )
    context = f"{run.log_text}\n{slurm_cluster.log_tail()}"
    # The slow rule fails, so Snakemake fails, but it must finish (not hang).
    assert run.returncode == 1, context

    # Every rule was submitted to SLURM and got a job ID.
    assert set(run.job_ids) == {"cpu_step", "gpu_step", "too_slow"}, context
    cpu = slurm_cluster.job_info(run.job_ids["cpu_step"][0])
    gpu = slurm_cluster.job_info(run.job_ids["gpu_step"][0])
    slow = slurm_cluster.job_info(run.job_ids["too_slow"][0])

    # The GPU rule asked for one GPU (plugin: gpu=1 -> --gpus=1), the CPU rule none.
    assert gpu["JobState"] == "COMPLETED", gpu
    assert gpu.get("TresPerJob") == "gres:gpu:1", gpu
    assert cpu["JobState"] == "COMPLETED", cpu
    assert "gpu" not in cpu.get("TresPerJob", ""), cpu
    assert cpu["Partition"] == "debug" and cpu["MinMemoryNode"] == "200M", cpu
    # The job step saw the fake GPU that SLURM allocated.
    assert "gpus=0" in (work / "logs" / "gpu_step.log").read_text()
    assert "gpus=none" in (work / "logs" / "cpu_step.log").read_text()

    # SLURM killed the slow job at its 1-minute limit and Snakemake reported it.
    assert slow["JobState"] == "TIMEOUT" and slow["TimeLimit"] == "00:01:00", slow
    assert "Error in rule too_slow" in run.log_text, context
    assert "TIMEOUT" in run.log_text, context
    assert not (work / "out" / "slow.txt").exists()
    killed_at = int((work / "ckpt" / "too_slow.step").read_text())
    assert 0 < killed_at < 100, killed_at

    # Same results as a local run.
    local = tmp_path / "local"
    proc = subprocess.run(
        ["timeout", "-k", "10", "120", "snakemake", "-s", str(TOY), "-d", str(local),
         "--cores", "1", "out/cpu.txt", "out/gpu.txt"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("cpu.txt", "gpu.txt"):
        assert filecmp.cmp(work / "out" / name, local / "out" / name, shallow=False), name

    # A re-run resumes the killed job from its checkpoint (longer limit for safety).
    rerun = slurm_cluster.run_snakemake(
        work, TOY, targets=["out/slow.txt"],
        extra_args=["--set-resources", "too_slow:runtime=3"], timeout_s=240,
    )
    assert rerun.returncode == 0, f"{rerun.log_text}\n{slurm_cluster.log_tail()}"
    assert list(rerun.job_ids) == ["too_slow"], rerun.log_text
    log = (work / "logs" / "too_slow.log").read_text()
    assert f"resumed_from={killed_at}" in log and "finished_at=100" in log, log
    assert (work / "out" / "slow.txt").read_text() == "steps=100\n"
