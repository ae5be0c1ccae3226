"""Which seed moves a GAN strategy's score: the classifier's or the GAN's? The real workflow, one seed changed at a time.

``seed_agreement.py`` retrains the real-only strategies in-process; a strategy
with synthetic volumes also needs the fold's GAN, so this script re-runs the
workflow itself. It copies a finished default run (its ``results/`` and
``.snakemake/``, times kept, so the cohort, preprocessing and dataset are not
re-made), deletes what the changed seed invalidates, and runs the user's command
``snakemake --cores N --configfile <overlay>`` with an overlay that sets one seed
and keeps only ``--strategies``:

* ``--source classifier``: ``classifier.seed`` k; the splits and the GANs stay
  those of the finished run, so the spread is the classifier's training noise
  (initialisation, batch order, which synthetic volumes are drawn, which epoch
  validation picks);
* ``--source gan``: ``gan.seed`` k; the splits and classifier seed stay, the GANs
  are retrained (a new generator changes the classifier's batches too).

It prints each seed's mean test balanced accuracy per strategy, the SD across
seeds and the SD of one fold's score across seeds, pooled over folds:

    python benchmarks/seed_sources.py --run /tmp/run0 --workdir /tmp/sources --source gan --seeds 1 2 3

The finished run's own scores count as its seed (``--base-seed``, default 0),
unless ``--set section.key=value`` changes a setting for the re-runs (an
ablation: then every seed is re-run, the base seed included, if listed).
Run from the repository root; PYTHONPATH gets this checkout's ``src`` first.
Each classifier seed takes about 2 minutes on 2 cores, each GAN seed about 3.5.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from controls import run_snakemake  # benchmarks/controls.py, beside this script
from variants import parse_value

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())["properties"]["strategies"]["default"]


def per_fold(run: Path, strategies: list[str]) -> pd.DataFrame:
    """Test balanced accuracy (%) per strategy (rows) and fold (columns) of a finished run's repeat 0."""
    table = pd.read_csv(run / "results" / "tables" / "per_fold.tsv", sep="\t")
    table = table[table["strategy"].isin(strategies) & (table["repeat"] == 0)]
    return 100 * table.pivot(index="strategy", columns="fold", values="test_balanced_accuracy")


def parse_settings(items: list[str]) -> dict[str, dict]:
    """``["classifier.bn_statistics=running"]`` -> ``{"classifier": {"bn_statistics": "running"}}`` (values as ``--variant``'s)."""
    settings: dict[str, dict] = {}
    for item in items:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        if not name or not value:
            sys.exit(f"--set {item!r}: expected section.key=value")
        settings.setdefault(section, {})[name] = parse_value(value)
    return settings


def rerun(base: Path, target: Path, source: str, seed: int, strategies: list[str], cores: int,
          settings: dict[str, dict]) -> float:
    """Copy ``base`` into ``target``, drop what ``source``'s seed invalidates, run the workflow; return wall seconds."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for part in ("results", ".snakemake"):
        shutil.copytree(base / part, target / part, symlinks=True)  # copy2 keeps the times Snakemake compares
    results = target / "results"
    drop = ["tables", "figures", "report", "classify"]
    if source == "gan" or "gan" in settings:
        drop += ["gan", "checkpoints"]  # a kept checkpoint would resume the old GAN
    for part in drop:
        shutil.rmtree(results / part, ignore_errors=True)
    overlay = {section: dict(values) for section, values in settings.items()}
    overlay.setdefault(source, {})["seed"] = seed
    overlay["strategies"] = {name: STRATEGIES[name] for name in strategies}
    return run_snakemake(target, overlay, cores)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished default run's folder (holds results/ and .snakemake/)")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--source", choices=["classifier", "gan"], required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--base-seed", type=int, default=0, help="the finished run's seed of --source")
    parser.add_argument("--strategies", nargs="+", default=["standard", "gan50"])
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a setting for every re-run, e.g. classifier.bn_statistics=running")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    settings = parse_settings(args.set)
    if set(settings) - {"classifier", "gan"}:
        sys.exit("--set changes the classifier and gan sections only (the copied run's cohort and splits are kept)")

    scores = {} if settings else {args.base_seed: per_fold(args.run, args.strategies)}
    for seed in args.seeds:
        target = args.workdir / f"{args.source}{seed}"
        seconds = rerun(args.run, target, args.source, seed, args.strategies, args.cores, settings)
        scores[seed] = per_fold(target, args.strategies)
        print(f"{args.source} seed {seed}: {seconds:.0f} s", flush=True)
    print(f"\n| strategy | {args.source} seeds | runs (%) | SD across runs | fold SD |")
    print("|---|---|---|---|---|")
    for name in args.strategies:
        folds = np.array([scores[seed].loc[name].to_numpy() for seed in scores])  # (seeds, folds)
        means = folds.mean(axis=1)
        fold_sd = float(np.sqrt(folds.var(axis=0, ddof=1).mean()))
        print(f"| {name} | {' '.join(map(str, scores))} | {' '.join(f'{m:.1f}' for m in means)} | "
              f"{means.std(ddof=1):.1f} | {fold_sd:.1f} |")


if __name__ == "__main__":
    main()
