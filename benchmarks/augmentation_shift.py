"""Does classic augmentation change what a brain looks like? And what does each step cost?

Validation and test volumes are never augmented, so anything the augmentation does
besides moving the brain is a train/test shift. Two parts, on a run's
``results/dataset`` (the embedded cohort at default settings is enough:
``snakemake --cores 2 --until dataset splits``):

``shift``: every volume rotated by +-2, +-4, +-6 degrees (the study's range) with
each method, against the original:

* high-frequency energy: the energy of ``v - gaussian(v, sigma = 1 voxel)``,
  summed over the brain (``brain``, rim included) and as a mean over the brain
  two voxels inside its rim (``interior``: texture only), as a share of the
  original's;
* the brain's intensity statistics (mean, SD, percentiles), its size in voxels,
  the mean of its rim (outermost voxels), the share of background voxels at the
  background value, and the value range;
* rolls: the share of brain voxels that the largest roll of each axis carries
  across the field of view's border (``torch.roll`` wraps them around).

Methods: ``bilinear`` (the former rotation, MONAI bilinear), ``fourier, plain``
(three Fourier-shift shears of the volume as it is: sinc interpolation across the
brain's edge) and ``fourier`` (the default: the brain extended over the
background first, the rotated mask puts the background back).

``ablation``: the classifier (the run's config, ``classifier`` section) trained on
each fold with classic augmentation off, roll and rotate (bilinear and Fourier),
rotate only, roll only; test balanced accuracy of the best-validation model.

    python benchmarks/augmentation_shift.py shift --results results
    python benchmarks/augmentation_shift.py ablation --results results --folds 0 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from scipy import ndimage

from brainaug.classify.augment import (
    _three_shears,  # the bare shears, for the "fourier, plain" row
    max_roll_voxels,
    rotate_axial_batch,
)
from brainaug.classify.fold_data import classifier_seed
from brainaug.classify.loop import train_classifier
from brainaug.classify.predict import evaluate
from brainaug.classify.settings import ClassifierSettings
from brainaug.dataset import load_dataset
from brainaug.splits import read_splits
from brainaug.strategies import Strategy
from brainaug.template import grid_spacing

ANGLES = (-6.0, -4.0, -2.0, 2.0, 4.0, 6.0)
BACKGROUND = -1.0
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)

VARIANTS: dict[str, dict | None] = {
    "none (standard)": None,
    "roll + rotate, bilinear (former)": {"augment_steps": "both", "augment_rotation": "bilinear"},
    "roll + rotate, fourier (default)": {"augment_steps": "both", "augment_rotation": "fourier"},
    "rotate only, bilinear": {"augment_steps": "rotate", "augment_rotation": "bilinear"},
    "rotate only, fourier": {"augment_steps": "rotate", "augment_rotation": "fourier"},
    "roll only": {"augment_steps": "roll"},
    "roll + rotate, fourier, rolls <= 5 mm (1 voxel)": {"augment_steps": "both", "augment_max_shift_mm": 5.0},
    "roll only, rolls <= 5 mm (1 voxel)": {"augment_steps": "roll", "augment_max_shift_mm": 5.0},
}


def _fourier_plain(batch: torch.Tensor, angles: list[float], spacing: tuple[float, float, float]) -> torch.Tensor:
    """Three Fourier shears of the volume as it is (background 0, zero padding), no edge handling."""
    sx, sy, _ = spacing
    out = []
    for v, angle in zip(batch, angles):
        t = np.radians(angle)
        a, b = np.tan(t / 2) * sy / sx, -np.sin(t) * sx / sy
        out.append(_three_shears([(v.float() - BACKGROUND, "constant")], a, b)[0] + BACKGROUND)
    return torch.stack(out)


def _brain(v: np.ndarray) -> np.ndarray:
    return np.abs(v - BACKGROUND) > 1e-6


def _high_pass(v: np.ndarray) -> np.ndarray:
    return v - ndimage.gaussian_filter(v.astype(np.float64), 1.0)


def _describe(volumes: np.ndarray, brains: np.ndarray) -> dict[str, float]:
    """Figures of ``volumes`` inside the reference brain masks ``brains`` (one per volume)."""
    values = np.concatenate([v[m] for v, m in zip(volumes, brains)])
    rims = np.concatenate([v[m & ~ndimage.binary_erosion(m)] for v, m in zip(volumes, brains)])
    hp = [_high_pass(v) for v in volumes]
    interior = [ndimage.binary_erosion(m, iterations=2) for m in brains]
    out = {
        "hf_brain": float(np.mean([(h[m] ** 2).sum() for h, m in zip(hp, brains)])),
        "hf_interior": float(np.mean([(h[m] ** 2).mean() for h, m in zip(hp, interior)])),
        "mean": float(values.mean()),
        "sd": float(values.std()),
        **{f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES},
        "brain_voxels": float(np.mean([_brain(v).sum() for v in volumes])),
        "rim_mean": float(rims.mean()),
        "background_exact": float(np.mean([(v[~m] == BACKGROUND).mean() for v, m in zip(volumes, brains)])),
        "min": float(volumes.min()),
        "max": float(volumes.max()),
    }
    return out


def shift(args: argparse.Namespace) -> dict:
    volumes, _ = load_dataset(f"{args.results}/dataset/volumes.npy", f"{args.results}/dataset/index.tsv")
    volumes = np.asarray(volumes, dtype=np.float32)
    size = volumes.shape[-1]
    spacing = grid_spacing(size)
    n = len(volumes)
    batch = torch.from_numpy(np.repeat(volumes, len(ANGLES), axis=0)).unsqueeze(1)
    angles = list(ANGLES) * n
    brains = _brain(volumes)
    rows = {"original": _describe(volumes, brains)}
    # One reference brain mask per rotated volume, the same for every method: the
    # original mask rotated (bilinear, threshold 0.5: a plain geometric rotation).
    masks = torch.from_numpy(np.repeat(brains, len(ANGLES), axis=0).astype(np.float32)).unsqueeze(1)
    reference = (rotate_axial_batch(masks, angles, 0.0, spacing, "bilinear")[:, 0] > 0.5).numpy()
    at_six = np.abs(np.array(angles)) == 6.0
    seconds = {}
    methods = {
        "bilinear": lambda b, a: rotate_axial_batch(b, a, BACKGROUND, spacing, "bilinear"),
        "fourier, plain": lambda b, a: _fourier_plain(b, a, spacing),
        "fourier": lambda b, a: rotate_axial_batch(b, a, BACKGROUND, spacing, "fourier"),
    }
    for name, rotate in methods.items():
        t0 = time.perf_counter()
        out = torch.cat([rotate(batch[i : i + 8], angles[i : i + 8]) for i in range(0, len(batch), 8)])
        seconds[name] = (time.perf_counter() - t0) / len(batch)
        rows[name] = _describe(out[:, 0].numpy(), reference)
        rows[f"{name}, 6 degrees"] = _describe(out[at_six, 0].numpy(), reference[at_six])
    rolls = max_roll_voxels(args.max_shift_mm, spacing)
    wrapped = []
    for axis, k in enumerate(rolls):
        per_side = [np.take(brains, range(k), axis=axis + 1).sum(), np.take(brains, range(size - k, size), axis=axis + 1).sum()]
        wrapped.append(float(np.mean(per_side) / brains.sum()))

    print(f"{n} volumes of {size}^3, voxels {tuple(round(s, 3) for s in spacing)} mm, angles {ANGLES}\n")
    ref = rows["original"]
    print("Rotated volumes: the brain is the original mask rotated (same for every method); brain voxels "
          "counts the voxels off the background value.\n")
    print("| | high-frequency energy, brain | ..., interior | mean | SD | "
          + " | ".join(f"p{q}" for q in PERCENTILES)
          + " | brain voxels | rim mean | background exact | range | ms/volume |")
    print("|---" * (11 + len(PERCENTILES)) + "|")
    for name, r in rows.items():
        base = rows["original"] if not name.endswith("6 degrees") else _describe(volumes, brains)
        hf = f"{r['hf_brain'] / base['hf_brain']:.3f}"
        hfi = f"{r['hf_interior'] / base['hf_interior']:.3f}"
        pct = " | ".join(f"{r[f'p{q}']:.3f}" for q in PERCENTILES)
        ms = f"{1000 * seconds[name]:.1f}" if name in seconds else ""
        print(f"| {name} | {hf} | {hfi} | {r['mean']:.3f} | {r['sd']:.3f} | {pct} | {r['brain_voxels']:.0f} | "
              f"{r['rim_mean']:.3f} | {r['background_exact']:.3f} | {r['min']:.2f}..{r['max']:.2f} | {ms} |")
    print(f"\nrolls up to {args.max_shift_mm} mm = {rolls} voxels (x, y, z); share of brain voxels a largest "
          f"roll wraps around: " + ", ".join(f"{100 * w:.2f}%" for w in wrapped))
    return {"rows": rows, "seconds_per_volume": seconds, "max_roll_voxels": rolls, "wrapped_share": wrapped}


def ablation(args: argparse.Namespace) -> dict:
    volumes, index = load_dataset(f"{args.results}/dataset/volumes.npy", f"{args.results}/dataset/index.tsv")
    splits = read_splits(f"{args.results}/splits.json")
    classes = splits["classes"]
    base = dict(yaml.safe_load(Path(args.config).read_text())["classifier"])
    base["precision"] = "fp32"
    results = {}
    print("| variant | test balanced accuracy per fold (%) | mean ± SD (%) | best train acc per fold (%) | s |")
    print("|---|---|---|---|---|")
    for name, overrides in VARIANTS.items():
        if args.only and not any(word in name for word in args.only):
            continue
        settings = ClassifierSettings.from_config({**base, **(overrides or {})})
        strategy = Strategy("standard" if overrides is None else "standard_aug", classic_augmentation=overrides is not None)
        baccs, fits, t0 = [], [], time.perf_counter()
        for k in args.folds:
            entry = splits["folds"][k]

            def take(role: str) -> tuple[np.ndarray, np.ndarray]:
                rows = index["subject_id"].isin(entry[role]).to_numpy()
                return np.asarray(volumes[rows], np.float32), index["label"].to_numpy()[rows]

            (tx, ty), (vx, vy), (sx, sy) = take("train"), take("val"), take("test")
            out = train_classifier(tx, ty, vx, vy, strategy, settings, classes, log=io.StringIO(),
                                   seed=classifier_seed(settings.seed, k), device="cpu")
            baccs.append(100 * evaluate(out.model, sx, sy)["balanced_accuracy"])
            fits.append(100 * float(out.history["train_acc"].max()))
        seconds = time.perf_counter() - t0
        results[name] = {"test_bacc": baccs, "best_train_acc": fits, "seconds": seconds}
        print(f"| {name} | {' '.join(f'{b:.1f}' for b in baccs)} | {np.mean(baccs):.1f} ± "
              f"{np.std(baccs, ddof=1) if len(baccs) > 1 else 0:.1f} | {' '.join(f'{f:.0f}' for f in fits)} "
              f"| {seconds:.0f} |", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["shift", "ablation"])
    parser.add_argument("--results", default="results", help="a run's results folder (dataset/, splits.json)")
    parser.add_argument("--config", default=str(Path(__file__).parents[1] / "config" / "config.yaml"),
                        help="config whose classifier section the ablation trains with")
    parser.add_argument("--max-shift-mm", type=float, default=10.5, help="roll range for the wrap-around figure")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--only", nargs="+", help="ablation: only the variants whose name holds one of these")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    figures = shift(args) if args.part == "shift" else ablation(args)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
