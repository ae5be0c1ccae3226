"""Does bf16 change how the alpha-GAN trains? Loss curves of bf16 and fp32 on real data.

Trains fold 0's GAN twice on the embedded cohort (the workflow's stacked
dataset, fold 0's training subjects only), once per precision, with the same
seed and settings, in two processes side by side, and plots the losses.

Usage (after `snakemake --cores 2` has built results/dataset and results/splits.json)::

    python benchmarks/gan_precision_curves.py --results results --iterations 250 \
        --out benchmarks/gan_bf16_vs_fp32_losses_cohort.png
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd


def _train(args: tuple[str, str, int, int]) -> tuple[str, pd.DataFrame, float]:
    import io
    import time

    from brainaug.dataset import load_dataset, select_subjects
    from brainaug.device import set_threads
    from brainaug.gan.settings import GANSettings
    from brainaug.gan.train import train_gan
    from brainaug.splits import fold_roles, read_splits

    results, precision, iterations, size = args
    set_threads(1)
    array, index = load_dataset(Path(results) / "dataset" / "volumes.npy", Path(results) / "dataset" / "index.tsv")
    splits_path = Path(results) / "splits.json"
    train = sorted(fold_roles(read_splits(splits_path), 0, splits_path, repeat=0)["train"])
    real, labels, _ = select_subjects(array, index, train)
    # The measurement was made with the previous generator; keep its conditioning.
    settings = GANSettings.from_config(dict(
        image_size=size, width=16, latent_dim=128, iterations=iterations, checkpoint_every=iterations,
        precision=precision, log_every=50, conditioning="projection", output_base="none",
    ))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train_gan(real, labels, list(splits["classes"]), settings, workdir=tmp, log=io.StringIO(), device="cpu")
    return precision, result.losses, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--iterations", type=int, default=250)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--out", default="benchmarks/gan_bf16_vs_fp32_losses_cohort.png")
    args = parser.parse_args()

    jobs = [(args.results, p, args.iterations, args.size) for p in ("bf16", "fp32")]
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(_train, jobs))

    from matplotlib.figure import Figure

    columns = [c for c in runs[0][1].columns if c != "iteration"]
    fig = Figure(figsize=(4 * len(columns), 3.2), dpi=100)
    axes = fig.subplots(1, len(columns))
    for precision, losses, seconds in runs:
        smooth = losses[columns].rolling(10, min_periods=1).mean()
        for ax, col in zip(axes, columns):
            ax.plot(losses["iteration"], smooth[col], label=f"{precision} ({seconds / len(losses):.2f} s/it)")
            ax.set_title(col)
        tail = losses[columns].tail(50).mean()
        print(f"{precision}: seconds_per_iter={seconds / len(losses):.3f} last-50 means: " + ", ".join(f"{c}={tail[c]:.3f}" for c in columns))
    axes[0].legend()
    fig.suptitle(f"alpha-GAN fold 0 on the embedded cohort, {args.size}^3, width 16: bf16 vs fp32 (10-iteration means)")
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
