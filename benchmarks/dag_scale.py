"""How long Snakemake plans the workflow as the cohort grows.

Planning cost is paid before the first job of every run (and again by every
``-n``), so it must grow no faster than the cohort. For each N this writes N
tiny distinct NIfTI files (8^3, one scan per subject, two classes) and a
manifest, runs the ``cohort`` checkpoint (``results/cohort.tsv``), then times a
dry run of the whole DAG (``snakemake -n``: N preprocessing jobs plus the GANs
and classifiers). Reported: the cohort job's own seconds (its ``benchmark:``
record), the wall time of the Snakemake call that ran it, and the dry run's wall
time. Target: the dry run at 2,000 scans <= 10 s, growing at most linearly.

Usage:
    nice -n 10 python benchmarks/dag_scale.py [--sizes 60 600 2000 10000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "Snakefile"
CLASSES = ("CN", "AD")


def write_cohort(root: Path, n_scans: int) -> Path:
    """N distinct 8^3 images and their manifest under ``root``; returns the manifest."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    affine = np.diag([20.0, 20.0, 20.0, 1.0])
    rows = []
    for k in range(n_scans):
        data = np.zeros((8, 8, 8), dtype=np.float32)
        data[2:6, 2:6, 2:6] = 100.0 + k  # distinct content, as real scans are
        path = images / f"s{k:05d}.nii"
        nib.save(nib.Nifti1Image(data, affine), str(path))
        rows.append({
            "subject_id": f"s{k:05d}", "session_id": "ses-01", "image": str(path),
            "diagnosis": CLASSES[k % len(CLASSES)], "age": "70", "sex": "FM"[k % 2],
        })
    manifest = root / "manifest.tsv"
    pd.DataFrame(rows).to_csv(manifest, sep="\t", index=False)
    return manifest


def snakemake(workdir: Path, configfile: Path, *args: str) -> tuple[float, float]:
    """Run Snakemake in ``workdir`` with one core; returns its wall and CPU seconds, fails loudly.

    CPU seconds (user + system, Snakemake and its jobs) stay meaningful on a shared
    machine, where wall time mostly measures the other jobs.
    """
    command = [sys.executable, "-m", "snakemake", *args, "--snakefile", str(SNAKEFILE),
               "--directory", str(workdir), "--cores", "1", "--configfile", str(configfile)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"$ {' '.join(command)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(root: Path, n_scans: int) -> dict[str, float]:
    """Cohort job seconds, the call that ran it, and the whole-DAG dry run, for one N."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = write_cohort(root, n_scans)
    config = {
        "data": {"source": "manifest", "manifest": str(manifest), "classes": list(CLASSES)},
        "cv": {"n_folds": 5},
        "preprocess": {"image_size": 16},
    }
    configfile = root / "config.yaml"
    configfile.write_text(yaml.safe_dump(config), encoding="utf-8")
    work = root / "work"
    work.mkdir(exist_ok=True)
    cohort_wall, cohort_cpu = snakemake(work, configfile, "results/cohort.tsv")
    cohort_job = float(pd.read_csv(work / "results/benchmarks/cohort/cohort.tsv", sep="\t")["s"].iloc[-1])
    dry_wall, dry_cpu = snakemake(work, configfile, "-n", "--quiet", "rules")
    return {
        "n_scans": n_scans, "cohort_job_s": cohort_job, "cohort_call_wall_s": cohort_wall,
        "cohort_call_cpu_s": cohort_cpu, "dry_run_wall_s": dry_wall, "dry_run_cpu_s": dry_cpu,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[60, 600, 2000, 10000])
    parser.add_argument("--workdir", type=Path, default=None, help="kept afterwards (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dag_scale_") as tmp:
        base = args.workdir or Path(tmp)
        print("N scans | cohort job s | cohort call wall s | cohort call CPU s | dry run wall s | dry run CPU s")
        for n in args.sizes:
            row = measure(base / f"n{n}", n)
            print(" | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)


if __name__ == "__main__":
    main()
