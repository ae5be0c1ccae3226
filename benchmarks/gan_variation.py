"""Do a run's samples vary like real brains, or by smooth shading? Every fold of a finished run.

MS-SSIM within a set is dominated by its coarse scales: smoothing away the
detail barely moves it. A generator can therefore close the MS-SSIM gap with
slow intensity swells that look like a bias field (the scans were
N4-corrected, so real ones have little of it). This splits each volume's
deviation from its class's mean into a smooth part (Gaussian, ``--sigma``
voxels) and the detail that remains, inside the brain, and compares the root
mean square of each with the fold's real training volumes:

* ``offset``: the samples' class means minus the real class means (what all
  samples of a class share; 0 for the real volumes by construction);
* ``variation``: each sample minus its own set's class mean (how samples
  differ from each other), smooth and detail, as a ratio to the real one.

A smooth ratio well above 1 with a detail ratio below 1 is shading; both near
1 is variation in anatomy at the real scale.

``real_vs_synthetic`` is the 5-fold cross-validated accuracy of a logistic
regression (C 0.01) on raw voxels that tells the fold's training volumes from
as many of its samples (chance 0.5; 1.0 means any linear probe spots them).

    python benchmarks/gan_variation.py --results results
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from brainaug.dataset import load_dataset, select_subjects
from brainaug.gan.quality import ms_ssim_diversity
from brainaug.gan.synthesize import load_synthetic
from brainaug.splits import fold_roles, read_splits


def smooth_and_detail(deviations: np.ndarray, mask: np.ndarray, sigma: float) -> tuple[float, float]:
    """RMS inside ``mask`` of the Gaussian-smoothed deviations and of what smoothing removes."""
    smooth = np.stack([gaussian_filter(d, sigma) for d in deviations])
    detail = deviations - smooth
    return float(np.sqrt(np.mean(smooth[:, mask] ** 2))), float(np.sqrt(np.mean(detail[:, mask] ** 2)))


def linear_separability(real: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> float:
    """Cross-validated accuracy of a voxel logistic regression, real against an equal number of samples."""
    rng = np.random.default_rng(seed)
    synthetic = synthetic[rng.choice(len(synthetic), min(len(real), len(synthetic)), replace=False)]
    x = np.concatenate([real, synthetic]).reshape(len(real) + len(synthetic), -1)
    y = np.r_[np.zeros(len(real)), np.ones(len(synthetic))]
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(LogisticRegression(C=0.01, max_iter=2000), x, y, cv=folds).mean())


def class_means(volumes: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.stack([volumes[labels == k].mean(axis=0) for k in range(n_classes)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=0)
    parser.add_argument("--sigma", type=float, default=3.0, help="Gaussian SD in voxels of the smooth part")
    parser.add_argument("--out", type=Path, help="write the table here as TSV")
    args = parser.parse_args()

    volumes, index = load_dataset(args.results / "dataset" / "volumes.npy", args.results / "dataset" / "index.tsv")
    splits = read_splits(args.results / "splits.json")
    rows = []
    for fold_dir in sorted((args.results / "gan" / f"repeat{args.repeat}").glob("fold*")):
        fold = int(fold_dir.name.removeprefix("fold"))
        roles = fold_roles(splits, fold, f"fold {fold}", repeat=args.repeat)
        train, labels, _ = select_subjects(volumes, index, sorted(roles["train"]))
        samples, sample_labels, classes = load_synthetic(fold_dir / "synthetic.npz")
        n = len(classes)
        real_means = class_means(train, labels, n)
        own_means = class_means(samples, sample_labels, n)
        mask = train.mean(axis=0) > -0.9
        real = smooth_and_detail(train - real_means[labels], mask, args.sigma)
        varied = smooth_and_detail(samples - own_means[sample_labels], mask, args.sigma)
        offset = smooth_and_detail(own_means - real_means, mask, args.sigma)
        rng = np.random.default_rng(0)
        rows.append({
            "fold": fold,
            "ms_ssim_real": ms_ssim_diversity(train, rng),
            "ms_ssim_synthetic": ms_ssim_diversity(samples, rng),
            "real_smooth": real[0], "real_detail": real[1],
            "synthetic_smooth": varied[0], "synthetic_detail": varied[1],
            "smooth_ratio": varied[0] / real[0], "detail_ratio": varied[1] / real[1],
            "offset_smooth": offset[0], "offset_detail": offset[1],
            "real_vs_synthetic": linear_separability(train, samples),
        })
    if not rows:
        raise SystemExit(f"{args.results}: no gan/repeat{args.repeat}/fold*/synthetic.npz")
    table = pd.DataFrame(rows)
    mean = table.mean(numeric_only=True).to_frame().T.assign(fold="mean")
    table = pd.concat([table, mean], ignore_index=True)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        table.to_csv(args.out, sep="\t", index=False, float_format="%.4f")


if __name__ == "__main__":
    main()
