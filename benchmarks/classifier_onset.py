"""When does the classifier leave chance? An ablation on a finished run's dataset.

Trains the `standard` (or another) strategy's classifier on every fold of an
existing results folder (`results/dataset`, `results/splits.json`) under a few
settings variants, and prints, per variant, the first epoch whose training
accuracy exceeds 0.6 in each fold, and the test balanced accuracy of the
best-validation model. Real volumes only; no GAN needed.

    python benchmarks/classifier_onset.py --results results --epochs 20

Each variant overrides the run's classifier section; the default variants are
the ablation recorded in benchmarks/README.md ("Why the classifier learned late").
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch

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
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    volumes, index = load_dataset(f"{args.results}/dataset/volumes.npy", f"{args.results}/dataset/index.tsv")
    splits = read_splits(f"{args.results}/splits.json")
    strategy = parse_strategies(None)[args.strategy]
    if strategy.uses_synthetic:
        raise SystemExit(f"--strategy {args.strategy} uses synthetic volumes; pick one that does not")
    classes = splits["classes"]
    print(f"| variant | first epoch with train acc > 0.6, per fold | test balanced accuracy, mean ± SD | s |")
    print("|---|---|---|---|")
    for name, overrides in VARIANTS.items():
        settings = ClassifierSettings.from_config(
            dict(lr=args.lr, max_epochs=args.epochs, min_epochs=args.epochs, patience=args.epochs,
                 batch_size=8, precision="fp32", **overrides)
        )
        onsets, baccs, t0 = [], [], time.perf_counter()
        for entry in splits["folds"]:  # every fold of every repeat
            k, r = int(entry["fold"]), int(entry.get("repeat", 0))

            def take(role: str) -> tuple[np.ndarray, np.ndarray]:
                rows = index["subject_id"].isin(entry[role]).to_numpy()
                return np.asarray(volumes[rows], np.float32), index["label"].to_numpy()[rows]

            (tx, ty), (vx, vy), (sx, sy) = take("train"), take("val"), take("test")
            out = train_classifier(tx, ty, vx, vy, strategy, settings, classes, log=io.StringIO(),
                                   seed=classifier_seed(settings.seed, k, repeat=r))
            above = out.history.loc[out.history["train_acc"] > 0.6, "epoch"]
            onsets.append(str(int(above.iloc[0])) if len(above) else f">{args.epochs}")
            baccs.append(evaluate(out.model, sx, sy)["balanced_accuracy"])
        print(f"| {name} | {' '.join(onsets)} | {100 * np.mean(baccs):.1f} ± {100 * np.std(baccs, ddof=1):.1f} "
              f"| {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
