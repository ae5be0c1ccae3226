"""Controls on the real workflow: shuffled labels must score at chance, exaggerated atrophy near 100 %.

Each control is the user's command, ``snakemake --cores N --configfile <overlay>``,
run in its own scratch folder with this checkout's Snakefile; the overlay is
merged over config/config.yaml (the embedded synthetic cohort, 32^3, 6 folds)
and reduces the strategies to ``standard`` alone, so no GAN is trained:

* ``shuffled``: ``controls.shuffle_labels: true`` (negative control);
* ``atrophy``: ``synthetic.atrophy_scale: 4`` (positive control).

For each it prints the test balanced accuracy, mean ± SD over the folds, and
two 95 % chance intervals: the permutation interval of the fold-mean balanced
accuracy for the run's own test sets and predictions, and the binomial interval
of pooled accuracy under uniform guessing; and the test macro AUC with its
permutation interval. It also checks what the control claims: how far the
shuffled labels agree with the true diagnoses, and that no GAN ran.

    nice -n 10 python benchmarks/controls.py --workdir /tmp/brainaug-controls --cores 2

``--shuffle-seeds 0 1 2`` repeats the negative control with other permutations
(``controls.seed``), each a full run in its own folder (``shuffled``,
``shuffled-seed1``, ...). Copying the first seed's folder would not save the
preprocessing: the cohort table holds absolute image paths, so Snakemake sees
new inputs and re-makes every scan.

Run from the repository root; PYTHONPATH gets this checkout's ``src`` first,
so the jobs import the code under test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score

from brainaug.cohort import read_cohort
from brainaug.cohort.synthetic import read_truth
from brainaug.results.chance import binomial_chance_interval, permutation_chance_interval

REPO = Path(__file__).resolve().parents[1]
STANDARD_ONLY = {"standard": {"synthetic_share": 0.0, "classic_augmentation": False}}


def overlays(atrophy_scale: float, shuffle_seeds: list[int]) -> dict[str, dict]:
    """The config overlay of each control run (merged over config/config.yaml), by folder name."""
    runs = {
        ("shuffled" if k == 0 else f"shuffled-seed{seed}"): {
            "strategies": STANDARD_ONLY,
            "controls": {"shuffle_labels": True, "seed": int(seed)},
        }
        for k, seed in enumerate(shuffle_seeds)
    }
    runs["atrophy"] = {"strategies": STANDARD_ONLY, "synthetic": {"atrophy_scale": float(atrophy_scale)}}
    return runs


def macro_auc(true: np.ndarray, probabilities: np.ndarray) -> float:
    """One-vs-rest macro AUC, as the workflow reports it."""
    return float(roc_auc_score(true, probabilities, multi_class="ovr", average="macro", labels=range(probabilities.shape[1])))


def run_snakemake(workdir: Path, overlay: dict, cores: int) -> tuple[list[str], float]:
    """Write the overlay and run the workflow in ``workdir``; return the command and wall seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    configfile = workdir / "overlay.yaml"
    configfile.write_text(yaml.safe_dump(overlay, sort_keys=False), encoding="utf-8")
    command = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--cores", str(cores), "--configfile", str(configfile),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("MPLBACKEND", "Agg")
    start = time.monotonic()
    with open(workdir / "snakemake.log", "w", encoding="utf-8") as log:
        done = subprocess.run(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        tail = (workdir / "snakemake.log").read_text(encoding="utf-8")[-4000:]
        raise SystemExit(f"snakemake failed in {workdir} (exit {done.returncode}):\n{tail}")
    return command, seconds


def fold_predictions(results: Path, n_folds: int) -> list[pd.DataFrame]:
    """Each fold's test rows of ``predictions.tsv`` (strategy ``standard``)."""
    folds = []
    for k in range(n_folds):
        table = pd.read_csv(results / "classify" / "standard" / f"fold{k}" / "predictions.tsv", sep="\t")
        folds.append(table[table["split"] == "test"].reset_index(drop=True))
    return folds


def summarise(name: str, workdir: Path, seconds: float, n_permutations: int) -> dict:
    """Scores, chance intervals and the checks of one finished control run."""
    results = workdir / "results"
    per_fold = pd.read_csv(results / "tables" / "per_fold.tsv", sep="\t")
    per_fold = per_fold[per_fold["strategy"] == "standard"]
    table = pd.read_csv(results / "tables" / "augmentation_comparison.csv")
    scores = per_fold["test_balanced_accuracy"].to_numpy(float)
    accuracy = per_fold["test_accuracy"].to_numpy(float)
    folds = fold_predictions(results, len(per_fold))
    n_test = sum(len(fold) for fold in folds)
    cohort = read_cohort(results / "cohort.tsv")
    n_classes = int(cohort["label"].nunique())
    labels = [(fold["true_label"].to_numpy(), fold["pred_label"].to_numpy()) for fold in folds]
    probabilities = [
        (fold["true_label"].to_numpy(), fold.filter(like="prob_").to_numpy()) for fold in folds
    ]
    permutation = permutation_chance_interval(labels, n_permutations=n_permutations)
    auc_chance = permutation_chance_interval(probabilities, n_permutations=max(1, n_permutations // 5), score=macro_auc)
    auc = np.array([macro_auc(true, prob) for true, prob in probabilities])
    binomial = binomial_chance_interval(n_test, n_classes)
    truth = read_truth(results / "synthetic_cohort")
    true_dx = truth.drop_duplicates("participant_id").set_index("participant_id")["diagnosis"]
    subjects = cohort.drop_duplicates("subject_id").set_index("subject_id")["diagnosis"]
    agreement = float((subjects == true_dx.reindex(subjects.index)).mean())
    severity = truth.groupby("diagnosis")["severity"].agg(["mean", "std"]).round(2)
    return {
        "control": name,
        "minutes": seconds / 60,
        "banner": str(table["control"].iloc[0]) if "control" in table.columns else "",
        "bal_acc_mean": scores.mean(),
        "bal_acc_sd": scores.std(ddof=1),
        "bal_acc_folds": scores,
        "acc_mean": accuracy.mean(),
        "n_test": n_test,
        "permutation": permutation,
        "binomial": binomial,
        "auc_mean": auc.mean(),
        "auc_sd": auc.std(ddof=1),
        "auc_chance": auc_chance,
        "label_agreement_with_truth": agreement,
        "gan_trained": (results / "gan").exists(),
        "severity": severity,
    }


def report(summary: dict) -> None:
    s = summary
    perm, binom = s["permutation"], s["binomial"]
    print(f"\n== {s['control']} ({s['minutes']:.1f} min wall)")
    print(f"table banner: {s['banner'] or '(none)'}")
    print(
        f"test balanced accuracy: {100 * s['bal_acc_mean']:.1f} ± {100 * s['bal_acc_sd']:.1f} % over "
        f"{len(s['bal_acc_folds'])} folds (folds: {' '.join(f'{100 * v:.0f}' for v in s['bal_acc_folds'])}); "
        f"test accuracy {100 * s['acc_mean']:.1f} %"
    )
    print(
        f"chance, 95 %: permutation interval of the fold-mean balanced accuracy "
        f"{100 * perm.low:.1f}-{100 * perm.high:.1f} % (mean {100 * perm.centre:.1f}); "
        f"binomial interval of pooled accuracy over {s['n_test']} test subjects "
        f"{100 * binom.low:.1f}-{100 * binom.high:.1f} % (p = {100 * binom.centre:.1f} %)"
    )
    inside = perm.contains(s["bal_acc_mean"])
    print(f"within the permutation chance interval: {'yes' if inside else 'NO'}")
    auc = s["auc_chance"]
    print(
        f"test macro AUC: {100 * s['auc_mean']:.1f} ± {100 * s['auc_sd']:.1f} %; permutation chance interval "
        f"{100 * auc.low:.1f}-{100 * auc.high:.1f} % ({'inside' if auc.contains(s['auc_mean']) else 'OUTSIDE'})"
    )
    print(f"subjects whose label in cohort.tsv equals the true diagnosis: {100 * s['label_agreement_with_truth']:.0f} %")
    print(f"GAN trained: {'yes' if s['gan_trained'] else 'no'}")
    print("atrophy severity (truth) per true diagnosis, mean and SD:")
    print(s["severity"].to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("controls-runs"), help="scratch folder (one subfolder per control)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=["shuffled", "atrophy"], default=["shuffled", "atrophy"])
    parser.add_argument("--atrophy-scale", type=float, default=4.0, help="synthetic.atrophy_scale of the positive control")
    parser.add_argument(
        "--shuffle-seeds", type=int, nargs="+", default=[0], help="controls.seed of each shuffled-label run"
    )
    parser.add_argument("--permutations", type=int, default=10000)
    parser.add_argument("--summarise-only", action="store_true", help="read finished runs in --workdir; run nothing")
    args = parser.parse_args()
    configs = overlays(args.atrophy_scale, args.shuffle_seeds)
    names = [n for n in configs if (n.split("-")[0] in args.only)]
    root = args.workdir.resolve()
    for name in names:
        workdir = root / name
        seconds = float("nan")
        if not args.summarise_only:
            command, seconds = run_snakemake(workdir, configs[name], args.cores)
            print(f"$ {' '.join(command)}", flush=True)
        report(summarise(name, workdir, seconds, args.permutations))


if __name__ == "__main__":
    main()
