"""How far apart are two runs that differ only in seed? The real-only strategies, without the GAN.

A whole default run takes 10-15 minutes; most of its seed-to-seed spread comes
from the classifier and the split. This script retrains only the strategies
without synthetic volumes (``standard``, ``standard_aug``) on a finished run's
dataset, once per seed, with that seed as ``cv.seed`` (new splits) and
``classifier.seed``, exactly as a whole run with that seed would, and prints each
seed's mean test balanced accuracy, then, per variant and strategy, the SD across
seeds, the largest difference between two seeds, and the SD of one fold's score
across seeds (pooled over folds; meaningful when the splits are held fixed):

    python benchmarks/seed_agreement.py --results results --seeds 0 1 2 3

To take the spread apart, hold one source fixed:

* ``--split-seed 0``: every seed keeps the splits of ``cv.seed`` 0, so the spread
  is the training noise alone (initialisation, batch order, augmentation, and
  which epoch validation picks);
* ``--classifier-seed 0``: every seed keeps ``classifier.seed`` 0 and draws new
  splits, so the spread is mostly the split's.

``--members M`` trains M classifiers per fold and tests their mean probabilities
(an ensemble; M times the training). ``--variant name:key=value,...`` overrides
the classifier section of ``--config``; ``--repeats`` sets ``cv.repeats``.
"""

from __future__ import annotations

import argparse
import io
import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from variants import fold_role, parse_variant  # benchmarks/variants.py, beside this script

from brainaug.classify.fold_data import classifier_seed
from brainaug.classify.loop import train_classifier
from brainaug.classify.predict import compute_metrics, predict_proba
from brainaug.classify.settings import ClassifierSettings
from brainaug.dataset import load_dataset
from brainaug.splits import make_splits
from brainaug.strategies import parse_strategies


def run_mean(volumes: np.ndarray, index, classes: list[str], strategy, settings: ClassifierSettings,
             split_seed: int, repeats: int, n_folds: int, val_fraction: float,
             members: int = 1) -> tuple[float, list[float], pd.DataFrame]:
    """Mean test balanced accuracy (%) over every fold of every repeat, as the results table computes it.

    ``split_seed`` is the run's ``cv.seed``; ``settings.seed`` its ``classifier.seed``.
    ``members`` > 1 trains that many classifiers per fold (base seeds seed, seed + 1000, ...)
    and tests their mean predicted probabilities. Also returns every test prediction
    (subject, label, correct), for :func:`subject_noise`.
    """
    seed = settings.seed
    splits = make_splits(index, n_folds=n_folds, val_fraction=val_fraction,
                         seed=split_seed, classes=classes, repeats=repeats)
    baccs, tested = [], []
    for entry in splits["folds"]:
        (tx, ty, _), (vx, vy, _), (sx, sy, test_subjects) = (
            fold_role(volumes, index, entry, role) for role in ("train", "val", "test"))
        proba = 0.0
        for m in range(members):
            out = train_classifier(
                tx, ty, vx, vy, strategy, settings, classes, log=io.StringIO(), device="cpu",
                seed=classifier_seed(seed + 1000 * m, int(entry["fold"]), repeat=int(entry["repeat"])))
            proba = proba + predict_proba(out.model, sx, settings.batch_size, torch.device("cpu"), None) / members
        baccs.append(100 * compute_metrics(sy, proba, len(classes))["balanced_accuracy"])
        tested.append(pd.DataFrame({"subject_id": test_subjects, "label": sy, "correct": proba.argmax(1) == sy}))
    return float(np.mean(baccs)), baccs, pd.concat(tested, ignore_index=True)


def subject_noise(tests: pd.DataFrame, repeats: int) -> tuple[int, int, float]:
    """How much of the spread is borderline subjects changing class: (subjects tested, of them
    sometimes right and sometimes wrong, run SD in points that their coin flips alone predict).

    Each subject's chance p of being classified right is its share of correct tests over all
    seeds and repeats. If subjects flipped independently, a run's balanced accuracy (the
    mean over classes of the share right) would vary by
    sqrt(sum_c sum_(i in c) p_i (1 - p_i) / (C^2 n_c^2) / repeats), with p(1 - p) estimated
    without bias from that subject's t tests (times t / (t - 1)).
    """
    per = tests.groupby("subject_id").agg(label=("label", "first"), p=("correct", "mean"), t=("correct", "size"))
    n_c = per.groupby("label")["p"].transform("size")
    var_i = per["p"] * (1 - per["p"]) * per["t"] / (per["t"] - 1).clip(lower=1)
    n_classes = per["label"].nunique()
    var = float((var_i / (n_classes**2 * n_c**2)).sum()) / repeats
    flipping = int(((per["p"] > 0) & (per["p"] < 1)).sum())
    return len(per), flipping, 100 * np.sqrt(var)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="a finished run's results folder")
    parser.add_argument("--strategies", nargs="+", default=["standard", "standard_aug"])
    parser.add_argument("--config", default=str(Path(__file__).parents[1] / "config" / "config.yaml"))
    parser.add_argument("--variant", action="append", help="name:key=value,... over the config's classifier section")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--repeats", type=int, default=None, help="cv.repeats (default: the config's)")
    parser.add_argument("--split-seed", type=int, default=None,
                        help="keep the splits of this cv.seed for every seed (the spread is then the training noise)")
    parser.add_argument("--classifier-seed", type=int, default=None,
                        help="keep this classifier.seed for every seed (the spread is then the split's)")
    parser.add_argument("--members", type=int, default=1, help="classifiers per fold, probabilities averaged")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(Path(args.config).read_text())
    cv = config.get("cv", {})
    repeats = args.repeats or int(cv.get("repeats", 1))
    volumes, index = load_dataset(f"{args.results}/dataset/volumes.npy", f"{args.results}/dataset/index.tsv")
    classes = list(config.get("data", {}).get("classes") or ["CN", "MCI", "AD"])
    base = dict(config["classifier"], precision="fp32")
    variants = dict(map(parse_variant, args.variant or ["default:"]))
    all_strategies = parse_strategies(None)
    print(f"repeats {repeats}, seeds {args.seeds}, split seed {args.split_seed}, "
          f"classifier seed {args.classifier_seed}\n")
    print("| variant | strategy | seed | test balanced accuracy per fold (%) | run mean (%) | s |")
    print("|---|---|---|---|---|---|")
    summary = []
    for (name, values), strategy_name in itertools.product(variants.items(), args.strategies):
        strategy = all_strategies[strategy_name]
        if strategy.uses_synthetic:
            raise SystemExit(f"{strategy_name} uses synthetic volumes; this script trains no GAN")
        means, per_fold, tests = [], [], []
        for seed in args.seeds:
            split_seed = seed if args.split_seed is None else args.split_seed
            classifier_base = seed if args.classifier_seed is None else args.classifier_seed
            settings = ClassifierSettings.from_config({**base, **values, "seed": classifier_base})
            t0 = time.perf_counter()
            mean, baccs, tested = run_mean(volumes, index, classes, strategy, settings, split_seed, repeats,
                                   int(cv.get("n_folds", 6)), float(cv.get("val_fraction", 0.2)),
                                   members=args.members)
            means.append(mean)
            per_fold.append(baccs)
            tests.append(tested)
            print(f"| {name} | {strategy_name} | {seed} | {' '.join(f'{b:.0f}' for b in baccs)} | {mean:.1f} "
                  f"| {time.perf_counter() - t0:.0f} |", flush=True)
        several = len(means) > 1
        # With the splits fixed, fold k is the same test set for every seed: its spread is
        # training noise. With new splits a fold's SD mixes different test sets: not shown.
        fold_sd = (f"{np.sqrt(np.mean(np.var(per_fold, axis=0, ddof=1))):.1f}"
                   if several and args.split_seed is not None else "")
        n_subjects, flipping, flip_sd = subject_noise(pd.concat(tests, ignore_index=True), repeats)
        summary.append(f"| {name} | {strategy_name} | {np.mean(means):.1f} | "
                       f"{np.std(means, ddof=1) if several else 0:.1f} | {max(means) - min(means):.1f} "
                       f"| {fold_sd} | {flipping} of {n_subjects} | {flip_sd:.1f} |")
    print("\n| variant | strategy | mean over seeds (%) | SD across seeds | largest gap between two seeds "
          "| fold SD across seeds (pooled) | subjects right in some seeds, wrong in others "
          "| run SD their flips predict |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
