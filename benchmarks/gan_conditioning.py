"""Which conditioning makes the alpha-GAN's samples carry their diagnosis? One fold, several variants.

Trains fold ``--fold``'s GAN on that fold's training subjects of a finished
workflow run (``--results``: its dataset, splits and the fold's ``standard``
classifier, used as the judge), once per variant, and logs the sample
monitor (judge balanced accuracy, MMD, MS-SSIM within samples, nearest-neighbour
ratio) every ``--monitor-every`` iterations. Writes ``<out>/curves.tsv``,
``<out>/summary.tsv`` and ``<out>/curves.png``.

A variant is ``name:key=value,key=value`` over the ``gan`` config section, e.g.
``projection:conditioning=projection`` or ``auxiliary:conditioning=auxiliary,lambda_class=1``.

Example (the ablation in benchmarks/README.md):
    python benchmarks/gan_conditioning.py --results results --iterations 400 \\
        --variant projection:conditioning=projection --variant auxiliary:conditioning=auxiliary
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from variants import parse_variant  # benchmarks/variants.py, beside this script

from brainaug.classify.predict import load_classifier, predict_proba
from brainaug.dataset import load_dataset, select_subjects
from brainaug.gan.monitor import MONITOR_COLUMNS, SampleMonitor
from brainaug.gan.settings import GANSettings
from brainaug.gan.train import train_gan
from brainaug.splits import fold_roles, read_splits


def plot_curves(curves: pd.DataFrame, path: Path, n_classes: int = 3) -> None:
    """The monitor's four numbers against iterations, one line per variant (per ``size`` when the table has one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["size", "variant"] if "size" in curves else ["variant"]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for key, part in curves.groupby(keys, sort=False):
        label = " ".join(f"{v}³" if k == "size" else str(v) for k, v in zip(keys, key if isinstance(key, tuple) else (key,)))
        for ax, col in zip(axes, MONITOR_COLUMNS):
            ax.plot(part["iteration"], part[col], marker="o", ms=3, label=label)
    for ax, col in zip(axes, MONITOR_COLUMNS):
        ax.set_title(col)
        ax.set_xlabel("iteration")
    axes[0].axhline(1 / n_classes, color="grey", ls=":", lw=1)
    axes[3].axhline(1.0, color="grey", ls=":", lw=1)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path)
    parser.add_argument("--plot", type=Path, help="only redraw the figure of a curves table (columns as curves.tsv, "
                        "optionally a size column) into --out/curves.png")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--monitor-every", type=int, default=50)
    parser.add_argument("--n-per-class", type=int, default=12)
    parser.add_argument("--variant", action="append")
    parser.add_argument("--set", action="append", default=[], help="key=value for every variant's gan section")
    parser.add_argument("--out", type=Path, default=Path("gan_conditioning"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.plot:
        plot_curves(pd.read_csv(args.plot, sep="\t"), args.out / "curves.png")
        return
    if args.results is None or not args.variant:
        parser.error("--results and at least one --variant are needed (or --plot)")
    torch.set_num_threads(args.threads)

    splits = args.results / "splits.json"
    roles = fold_roles(read_splits(splits), args.fold, splits, repeat=0)
    array, index = load_dataset(args.results / "dataset" / "volumes.npy", args.results / "dataset" / "index.tsv")
    real, labels, _ = select_subjects(array, index, sorted(roles["train"]))
    classes = read_splits(splits)["classes"]
    judge_dir = args.results / "classify" / "standard"
    # repeat0/fold{k} since cv.repeats; fold{k} in runs made before it.
    judge_path = next(
        (p for p in (judge_dir / "repeat0" / f"fold{args.fold}", judge_dir / f"fold{args.fold}") if p.is_dir()),
        judge_dir / "repeat0" / f"fold{args.fold}",
    )
    model, _ = load_classifier(judge_path / "model.pt")

    def judge(volumes: np.ndarray) -> np.ndarray:
        return predict_proba(model, volumes).argmax(1)

    common = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    curves, summary = [], []
    for text in args.variant:
        name, values = parse_variant(text)
        section = {**common, **values, "iterations": args.iterations, "monitor_every": args.monitor_every,
                   "checkpoint_every": args.iterations, "image_size": real.shape[1]}
        settings = GANSettings.from_config(section)
        monitor = SampleMonitor(real, classes, judge, n_per_class=args.n_per_class, seed=12345)
        workdir = args.out / "work" / name
        for old in workdir.glob("*.pt"):
            old.unlink()
        started = time.perf_counter()
        result = train_gan(real, labels, classes, settings, workdir, log=io.StringIO(), device="cpu", monitor=monitor)
        seconds = time.perf_counter() - started
        rows = result.losses.dropna(subset=["nn_ratio"])[["iteration", *MONITOR_COLUMNS]].assign(variant=name)
        curves.append(rows)
        last = rows.iloc[-1]
        summary.append({"variant": name, "settings": text, "seconds": round(seconds, 1),
                        **{c: round(float(last[c]), 4) for c in MONITOR_COLUMNS}})
        print(pd.DataFrame(summary).to_string(index=False), flush=True)
    curves_df = pd.concat(curves)
    curves_df.to_csv(args.out / "curves.tsv", sep="\t", index=False)
    pd.DataFrame(summary).to_csv(args.out / "summary.tsv", sep="\t", index=False)

    plot_curves(curves_df, args.out / "curves.png", n_classes=len(classes))

if __name__ == "__main__":
    main()
