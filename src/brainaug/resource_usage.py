"""Per-stage resource use, summed from Snakemake's ``benchmark:`` records.

A researcher sizing a cluster request needs "how long and how much memory
does a GAN job take", not 40 separate files; this folds them per rule.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["summarise_benchmarks"]


def summarise_benchmarks(benchmark_dir: str | Path) -> pd.DataFrame:
    """One row per rule: jobs, total/mean/max seconds, max RSS (MB), CPU seconds.

    Args:
        benchmark_dir: folder holding ``<rule>/<...>.tsv`` benchmark files.
    """
    root = Path(benchmark_dir)
    records = []
    for path in sorted(root.rglob("*.tsv")):
        stage = path.relative_to(root).parts[0]
        table = pd.read_csv(path, sep="\t")
        for _, row in table.iterrows():
            records.append(
                {
                    "stage": stage,
                    "seconds": float(row["s"]),
                    "max_rss_mb": pd.to_numeric(row.get("max_rss"), errors="coerce"),
                    "cpu_seconds": pd.to_numeric(row.get("cpu_time"), errors="coerce"),
                }
            )
    if not records:
        raise ValueError(f"No benchmark records (*.tsv) under {root}")
    frame = pd.DataFrame.from_records(records)
    summary = frame.groupby("stage", sort=False).agg(
        jobs=("seconds", "size"),
        total_seconds=("seconds", "sum"),
        mean_seconds=("seconds", "mean"),
        max_seconds=("seconds", "max"),
        max_rss_mb=("max_rss_mb", "max"),
        cpu_seconds=("cpu_seconds", "sum"),
    )
    return summary.reset_index().round(2)
