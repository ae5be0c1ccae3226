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

Why more than one seed for the negative control: the permutation interval
permutes each fold's test labels against fixed predictions. Under a real
shuffle the predictions are themselves learned from labels of the same 60
subjects, so all folds share the chance association between anatomy and the
one permutation drawn: whole runs move up or down together, and one run's
score (the macro AUC most visibly) scatters more than that interval says.
``--shuffle-seeds 0 1 2 ...`` re-runs the workflow with each ``controls.seed``
in the same folder: only the cohort table, splits, dataset and classifiers are
re-made (the preprocessed scans do not depend on the labels; about 2 minutes a
seed on 2 cores). Each seed's tables and predictions are kept under
``shuffled/seeds/seed<k>/``, and the spread over seeds, the full-pipeline
permutation null, is printed at the end.

Run from the repository root; PYTHONPATH gets this checkout's ``src`` first,
so the jobs import the code under test.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def overlays(atrophy_scale: float, shuffle_seed: int = 0) -> dict[str, dict]:
    """The config overlay of each control (merged over config/config.yaml)."""
    return {
        "shuffled": {"strategies": STANDARD_ONLY, "controls": {"shuffle_labels": True, "seed": int(shuffle_seed)}},
        "atrophy": {"strategies": STANDARD_ONLY, "synthetic": {"atrophy_scale": float(atrophy_scale)}},
    }


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


#: What a summary reads from a results folder (and what is kept of each shuffle seed).
KEPT = ("cohort.tsv", "tables/per_fold.tsv", "tables/augmentation_comparison.csv", "classify/standard")


def keep_outputs(results: Path, target: Path) -> None:
    """Copy what :func:`summarise` reads, so the next seed's run can overwrite ``results``."""
    for name in KEPT:
        source = results / name
        if source.is_dir():
            shutil.copytree(source, target / name, dirs_exist_ok=True)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def fold_predictions(results: Path, n_folds: int) -> list[pd.DataFrame]:
    """Each fold's test rows of ``predictions.tsv`` (strategy ``standard``, repeat 0: the controls run one repeat)."""
    folds = []
    for k in range(n_folds):
        table = pd.read_csv(results / "classify" / "standard" / "repeat0" / f"fold{k}" / "predictions.tsv", sep="\t")
        folds.append(table[table["split"] == "test"].reset_index(drop=True))
    return folds


def summarise(name: str, results: Path, truth_dir: Path, seconds: float, n_permutations: int) -> dict:
    """Scores, chance intervals and the checks of one finished control run.

    Args:
        results: the run's results (or a kept copy: see :data:`KEPT`).
        truth_dir: the run's synthetic cohort (ground-truth diagnoses and severity).
    """
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
    probabilities = [(fold["true_label"].to_numpy(), fold.filter(like="prob_").to_numpy()) for fold in folds]
    permutation = permutation_chance_interval(labels, n_permutations=n_permutations)
    auc_chance = permutation_chance_interval(probabilities, n_permutations=max(1, n_permutations // 5), score=macro_auc)
    auc = np.array([macro_auc(true, prob) for true, prob in probabilities])
    binomial = binomial_chance_interval(n_test, n_classes)
    truth = read_truth(truth_dir)
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
    print("atrophy severity (truth) per true diagnosis, mean and SD:")
    print(s["severity"].to_string())


def report_seeds(summaries: list[dict]) -> None:
    """The full-pipeline permutation null: each seed's fold-mean scores and their spread."""
    bal = np.array([s["bal_acc_mean"] for s in summaries])
    auc = np.array([s["auc_mean"] for s in summaries])
    print(f"\n== shuffled labels over {len(summaries)} seeds (full-pipeline permutation null)")
    print("seed  balanced accuracy  macro AUC")
    for s, b, a in zip(summaries, bal, auc):
        print(f"{s['control']:>10}  {100 * b:6.1f}  {100 * a:6.1f}")
    for name, values in (("balanced accuracy", bal), ("macro AUC", auc)):
        low, high = np.quantile(values, [0.025, 0.975])
        print(
            f"{name}: mean over seeds {100 * values.mean():.1f} %, SD {100 * values.std(ddof=1):.1f}, "
            f"range {100 * values.min():.1f}-{100 * values.max():.1f}, central 95 % {100 * low:.1f}-{100 * high:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("controls-runs"), help="scratch folder (one subfolder per control)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=["shuffled", "atrophy"], default=["shuffled", "atrophy"])
    parser.add_argument("--atrophy-scale", type=float, default=4.0, help="synthetic.atrophy_scale of the positive control")
    parser.add_argument(
        "--shuffle-seeds", type=int, nargs="+", default=[0], help="controls.seed of each shuffled-label run, in one folder"
    )
    parser.add_argument("--permutations", type=int, default=10000)
    parser.add_argument("--summarise-only", action="store_true", help="read finished runs in --workdir; run nothing")
    args = parser.parse_args()
    root = args.workdir.resolve()
    if "shuffled" in args.only:
        workdir = root / "shuffled"
        summaries = []
        for seed in args.shuffle_seeds:
            kept = workdir / "seeds" / f"seed{seed}"
            seconds = float("nan")
            if not args.summarise_only:
                command, seconds = run_snakemake(workdir, overlays(args.atrophy_scale, seed)["shuffled"], args.cores)
                print(f"$ {' '.join(command)}", flush=True)
                keep_outputs(workdir / "results", kept)
            summary = summarise(f"seed {seed}", kept, workdir / "results" / "synthetic_cohort", seconds, args.permutations)
            report(summary)
            summaries.append(summary)
        print(f"GAN trained: {'yes' if (workdir / 'results' / 'gan').exists() else 'no'}")
        if len(summaries) > 1:
            report_seeds(summaries)
    if "atrophy" in args.only:
        workdir = root / "atrophy"
        seconds = float("nan")
        if not args.summarise_only:
            command, seconds = run_snakemake(workdir, overlays(args.atrophy_scale)["atrophy"], args.cores)
            print(f"$ {' '.join(command)}", flush=True)
        report(summarise("atrophy", workdir / "results", workdir / "results" / "synthetic_cohort", seconds, args.permutations))
        print(f"GAN trained: {'yes' if (workdir / 'results' / 'gan').exists() else 'no'}")


if __name__ == "__main__":
    main()
