"""How many repeats make two runs agree? Resampled from finished runs' repeats.

Every repeat of a run has its own split, GANs and classifiers (seeds derived by
``brainaug.splits.repeat_seed``), so each (run, repeat) is an independent
one-repeat run. Given finished runs of the same config with different seeds,
this script pools their repeats, prints each one's mean test balanced accuracy
per strategy and the SD of one repeat's mean, then estimates, for r = 1, 2, ...,
how often two runs of r repeats agree within ``--within`` points on every
strategy: it draws two disjoint sets of r repeats many times and compares their
averages. Beside it, the same probability from a normal model of those SDs,
strategies taken as independent.

    python benchmarks/repeat_agreement.py --runs r5s0 r5s1 run_seed2 run_seed3

``--runs`` takes run folders (holding ``results/tables/per_fold.tsv``) or the
TSV files themselves. The largest r is half the pooled repeats.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm


def repeat_means(runs: list[Path]) -> pd.DataFrame:
    """Mean test balanced accuracy (%) per (run, repeat) row and strategy column."""
    rows = []
    for run in runs:
        path = run if run.is_file() else run / "results" / "tables" / "per_fold.tsv"
        table = pd.read_csv(path, sep="\t")
        means = 100 * table.groupby(["repeat", "strategy"])["test_balanced_accuracy"].mean().unstack()
        means.index = [f"{run} r{r}" for r in means.index]  # a path: two runs may share a folder name
        rows.append(means)
    means = pd.concat(rows)
    if means.isna().any().any():
        raise SystemExit("the runs do not share their strategies: " + ", ".join(means.columns[means.isna().any()]))
    return means


def agreement(means: np.ndarray, r: int, within: float, draws: int, rng: np.random.Generator) -> float:
    """Share of draws in which two disjoint sets of ``r`` repeats agree within ``within`` on every column."""
    hits = 0
    for _ in range(draws):
        pick = rng.permutation(len(means))[: 2 * r]
        gap = np.abs(means[pick[:r]].mean(axis=0) - means[pick[r:]].mean(axis=0))
        hits += bool(np.all(gap <= within))
    return hits / draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--within", type=float, default=5.0, help="points (default 5, issue 11's bound)")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    means = repeat_means(args.runs)
    if len(means) < 2:
        raise SystemExit(f"{len(means)} repeat found; two runs' worth needs at least 2")
    print(means.round(1).to_markdown())
    sd = means.std(ddof=1)
    print("\nSD of one repeat's mean: " + ", ".join(f"{name} {value:.1f}" for name, value in sd.items()))
    print(f"\n| repeats | two runs within {args.within:g} on every strategy (resampled) | (normal model) |")
    print("|---|---|---|")
    rng = np.random.default_rng(args.seed)
    for r in range(1, len(means) // 2 + 1):
        model = float(np.prod(2 * norm.cdf(args.within / (sd.to_numpy() * np.sqrt(2 / r))) - 1))
        share = agreement(means.to_numpy(), r, args.within, args.draws, rng)
        print(f"| {r} | {100 * share:.0f} % | {100 * model:.0f} % |")


if __name__ == "__main__":
    main()
