"""When does the classifier leave chance? An ablation on a finished run's dataset.

Trains the `standard` (or another) strategy's classifier on every fold of an
existing results folder (`results/dataset`, `results/splits.json`) under a few
settings variants, and prints, per variant, the first epoch whose training
accuracy exceeds 0.6 in each fold, and the test balanced accuracy of the
best-validation model. Real volumes only; no GAN needed.

    python benchmarks/classifier_onset.py --results results --epochs 20

Without ``--variant``, the variants are the ablation recorded in
benchmarks/README.md ("Why the classifier learned late"): each overrides a fixed
20-epoch schedule at batch 8. With ``--variant name:key=value,...`` (repeatable),
each variant overrides the classifier section of ``--config`` (the laptop default
unless given) and keeps its early-stopping schedule unless ``--epochs`` is given;
``--seeds`` trains every fold once per classifier base seed (the splits stay the
run's), so the spread between seeds is the training noise alone:

    python benchmarks/classifier_onset.py --results results --strategy standard_aug \
        --variant default: --variant batch4:batch_size=4 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from variants import fold_role, parse_variant  # benchmarks/variants.py, beside this script

from brainaug.classify.fold_data import classifier_seed
from brainaug.classify.loop import train_classifier
from brainaug.classify.predict import evaluate
from brainaug.classify.settings import ClassifierSettings
from brainaug.dataset import load_dataset
from brainaug.splits import read_splits
from brainaug.strategies import parse_strategies

VARIANTS = {
    "study head, raw input, dropout 0.5": {"input_centering": "none", "pooling": "flatten", "dropout": 0.5},
    "study head, raw input, dropout 0": {"input_centering": "none", "pooling": "flatten", "dropout": 0.0},
    "average head, raw input, dropout 0": {"input_centering": "none", "pooling": "average", "dropout": 0.0},
    "study head, centred, dropout 0.5": {"input_centering": "train_mean", "pooling": "flatten", "dropout": 0.5},
    "average head, centred, dropout 0.5": {"input_centering": "train_mean", "pooling": "average", "dropout": 0.5},
    "average head, centred, dropout 0 (laptop default)": {"input_centering": "train_mean", "pooling": "average", "dropout": 0.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="a finished run's results folder")
    parser.add_argument("--strategy", default="standard", help="a strategy without synthetic volumes")
    parser.add_argument("--epochs", type=int, default=None, help="a fixed schedule (default: 20 for the "
                        "historic variants, the config's early stopping with --variant)")
    parser.add_argument("--lr", type=float, default=1e-3, help="the historic variants' learning rate")
    parser.add_argument("--config", default=str(Path(__file__).parents[1] / "config" / "config.yaml"))
    parser.add_argument("--variant", action="append", help="name:key=value,... over the config's classifier section")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="classifier base seeds (default: the config's)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    volumes, index = load_dataset(f"{args.results}/dataset/volumes.npy", f"{args.results}/dataset/index.tsv")
    splits = read_splits(f"{args.results}/splits.json")
    strategy = parse_strategies(None)[args.strategy]
    if strategy.uses_synthetic:
        raise SystemExit(f"--strategy {args.strategy} uses synthetic volumes; pick one that does not")
    classes = splits["classes"]
    if args.variant:
        base = dict(yaml.safe_load(Path(args.config).read_text())["classifier"], precision="fp32")
        if args.epochs:
            base.update(max_epochs=args.epochs, min_epochs=args.epochs, patience=args.epochs)
        variants = {name: {**base, **values} for name, values in map(parse_variant, args.variant)}
    else:
        epochs = args.epochs or 20
        variants = {name: dict(lr=args.lr, max_epochs=epochs, min_epochs=epochs, patience=epochs,
                               batch_size=8, precision="fp32", **overrides) for name, overrides in VARIANTS.items()}
    print("| variant | seed | first epoch with train acc > 0.6, per fold | best epoch, per fold "
          "| test balanced accuracy per fold (%) | mean ± SD (%) | s |")
    print("|---|---|---|---|---|---|---|")
    for name, section in variants.items():
        means = []
        # add: a constant added to every volume (train, val, test) before training; a
        # probe of the input scaling (add=1 puts the background at 0, the convolutions' padding value).
        section = dict(section)
        add = float(section.pop("add", 0.0))
        for seed in args.seeds or [None]:
            settings = ClassifierSettings.from_config(section if seed is None else {**section, "seed": seed})
            onsets, best, baccs, t0 = [], [], [], time.perf_counter()
            for entry in splits["folds"]:  # every fold of every repeat
                k, r = int(entry["fold"]), int(entry.get("repeat", 0))
                (tx, ty, _), (vx, vy, _), (sx, sy, _) = (
                    fold_role(volumes, index, entry, role) for role in ("train", "val", "test"))
                tx, vx, sx = tx + add, vx + add, sx + add
                out = train_classifier(tx, ty, vx, vy, strategy, settings, classes, log=io.StringIO(),
                                       seed=classifier_seed(settings.seed, k, repeat=r), device="cpu")
                above = out.history.loc[out.history["train_acc"] > 0.6, "epoch"]
                onsets.append(str(int(above.iloc[0])) if len(above) else f">{len(out.history)}")
                best.append(str(out.best_epoch))
                baccs.append(100 * evaluate(out.model, sx, sy)["balanced_accuracy"])
            means.append(np.mean(baccs))
            print(f"| {name} | {settings.seed} | {' '.join(onsets)} | {' '.join(best)} "
                  f"| {' '.join(f'{b:.1f}' for b in baccs)} | {np.mean(baccs):.1f} ± {np.std(baccs, ddof=1):.1f} "
                  f"| {time.perf_counter() - t0:.0f} |", flush=True)
        if len(means) > 1:
            print(f"| {name} | all | | | | mean {np.mean(means):.1f}, SD {np.std(means, ddof=1):.1f}, "
                  f"range {min(means):.1f}–{max(means):.1f} | |", flush=True)


if __name__ == "__main__":
    main()
