"""Benchmark: does the synthetic cohort separate (and overlap) the classes as intended?

Generates the default synthetic cohort into a temporary folder, times it, and
reads the ground-truth volumes (``derivatives/brainaug-truth/truth.tsv``):
hippocampus and lateral ventricles per class (mean +- SD), and the overlap
between neighbouring classes (share of the milder class's subjects inside the
range of the next class). Saves a strip/box plot to ``benchmarks/cohort_volumes.png``.

Run:  python benchmarks/cohort_volumes.py [--n-per-class 24] [--n-jobs 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from brainaug.cohort.synthetic import make_synthetic_cohort, read_truth  # noqa: E402

CLASSES = ("CN", "MCI", "AD")
MEASURES = {
    "hippocampus_mm3": "hippocampus (mm³, both sides)",
    "lateral_ventricle_mm3": "lateral ventricles (mm³)",
    "hippocampus_icv": "hippocampus / ICV (‰)",
    "severity": "atrophy severity (truth)",
}


def summarize(truth: pd.DataFrame) -> pd.DataFrame:
    """Per class and measure: mean, SD, and the share of the class inside the next class's range."""
    rows = []
    for measure in MEASURES:
        for i, cls in enumerate(CLASSES):
            values = truth.loc[truth["diagnosis"] == cls, measure]
            row = {"measure": measure, "class": cls, "n": len(values), "mean": values.mean(), "sd": values.std()}
            if i + 1 < len(CLASSES):
                nxt = truth.loc[truth["diagnosis"] == CLASSES[i + 1], measure]
                row["share_in_next_class_range"] = float(values.between(nxt.min(), nxt.max()).mean())
            rows.append(row)
    return pd.DataFrame(rows)


def plot(truth: pd.DataFrame, path: Path, seconds_per_scan: float) -> None:
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(4 * len(MEASURES), 4))
    rng = np.random.default_rng(0)
    for ax, (measure, title) in zip(axes, MEASURES.items()):
        data = [truth.loc[truth["diagnosis"] == c, measure].to_numpy() for c in CLASSES]
        ax.boxplot(data, widths=0.5, showfliers=False)
        for i, values in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=12, alpha=0.7)
        ax.set_xticks(range(1, len(CLASSES) + 1), CLASSES)
        ax.set_title(title, fontsize=10)
    fig.suptitle(
        f"brainaug synthetic cohort: ground truth per class (n={len(truth)}, {seconds_per_scan:.2f} s/scan)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-class", type=int, default=24)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("cohort_volumes.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cpu_start = time.process_time()
        root = make_synthetic_cohort(
            Path(tmp) / "bids", n_per_class=args.n_per_class, seed=args.seed, n_jobs=args.n_jobs
        )
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        files = sorted(root.glob("sub-*/**/*_T1w.nii.gz"))
        sizes = np.array([f.stat().st_size for f in files]) / 1e6
        truth = read_truth(root)
    truth["hippocampus_icv"] = 1000.0 * truth["hippocampus_mm3"] / truth["icv_mm3"]
    n = len(truth)
    print(
        f"generated {n} scans in {seconds:.1f} s with n_jobs={args.n_jobs} "
        f"({seconds / n:.2f} s/scan wall, {cpu / n:.2f} s/scan CPU)"
    )
    print(f"file size: mean {sizes.mean():.2f} MB, total {sizes.sum():.0f} MB")
    print(f"orientations: {truth['orientation'].nunique()} distinct; skull on: {truth['skull'].mean():.0%}")
    table = summarize(truth)
    with pd.option_context("display.float_format", "{:.3g}".format, "display.width", 120):
        print(table.to_string(index=False))
    plot(truth, args.out, seconds / n)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
