# Helpers shared by the rules: config validation, cohort lookups, output lists.
import os
from pathlib import Path

import pandas as pd
from snakemake.utils import validate

from brainaug.config import check_config
from brainaug.controls import control_banner
from brainaug.strategies import parse_strategies


validate(config, schema="../../config/schema.yaml", set_default=True)
check_config(config)

RESULTS = Path(config["results_dir"])
CLASSES = list(config["data"]["classes"])
N_FOLDS = int(config["cv"]["n_folds"])
FOLDS = list(range(N_FOLDS))
N_REPEATS = int(config["cv"]["repeats"])
REPEATS = list(range(N_REPEATS))
STRATEGIES = list(config["strategies"])
#: The path part of one (repeat, fold) under results/gan, results/classify/{strategy},
#: checkpoints, logs and benchmarks (brainaug.splits.fold_dir writes the same).
RUN = "repeat{repeat}/fold{fold}"
#: Whether any strategy draws synthetic volumes; when none does, no GAN is trained or reported.
USES_GAN = any(s.uses_synthetic for s in parse_strategies(config["strategies"]).values())
#: "" for a real run; the loud line a control run's table, figure and report carry.
CONTROL_BANNER = control_banner(config)


wildcard_constraints:
    scan=r"[A-Za-z0-9_\-\.]+",
    repeat=r"\d+",
    fold=r"\d+",
    strategy=r"[A-Za-z0-9_\-]+",


def res(stage, key, default=None):
    """Per-stage resource from config["resources"], so a profile need not know the rules."""
    return config["resources"].get(stage, {}).get(key, default)


def cohort_source_input(wildcards):
    data = config["data"]
    if data["source"] == "synthetic":
        return {"bids": str(RESULTS / "synthetic_cohort")}
    if data["source"] == "bids":
        return {"bids": data["bids_dir"]}
    return {"manifest": data["manifest"]}


_COHORT_CACHE = {}


def cohort_images():
    """``{scan_id: image}`` from the validated cohort table, read once per version of the file.

    Snakemake calls input functions once per job; re-reading the table each time made
    planning quadratic in the number of scans. Keyed by path and mtime, so a re-made
    table (the checkpoint re-ran) is read again.
    """
    table = checkpoints.cohort.get().output.table
    key = (os.path.abspath(table), os.stat(table).st_mtime_ns)
    if key not in _COHORT_CACHE:
        cohort = pd.read_csv(table, sep="\t", dtype=str, usecols=["scan_id", "image"])
        _COHORT_CACHE.clear()
        _COHORT_CACHE[key] = dict(zip(cohort["scan_id"], cohort["image"]))
    return _COHORT_CACHE[key]


def scans():
    """Scan IDs from the validated cohort table (available once the checkpoint ran)."""
    return list(cohort_images())


def scan_image(wildcards):
    return cohort_images()[wildcards.scan]


def preprocessed_volumes(wildcards):
    return expand(str(RESULTS / "preprocessed" / "{scan}.nii.gz"), scan=scans())


def qc_rows(wildcards):
    return expand(str(RESULTS / "qc" / "{scan}.json"), scan=scans())


def synthetic_input(wildcards):
    """A strategy that uses no synthetic volumes does not wait for the GAN."""
    if float(config["strategies"][wildcards.strategy]["synthetic_share"]) > 0:
        return str(RESULTS / "gan" / RUN.format(repeat=wildcards.repeat, fold=wildcards.fold) / "synthetic.npz")
    return []


def judge_strategy():
    """The real-data strategy whose classifier judges the GAN's samples (None: no strategy is real-only)."""
    real_only = [name for name, s in config["strategies"].items() if float(s["synthetic_share"]) == 0]
    baseline = config["results"]["baseline"]
    return baseline if baseline in real_only else (real_only[0] if real_only else None)


def judge_model(wildcards):
    """The fold's real-data classifier, fitted on the fold's training subjects (the GAN never trains on it)."""
    strategy = judge_strategy()
    if strategy is None:
        return []
    return str(RESULTS / "classify" / strategy / RUN.format(**wildcards) / "model.pt")


def gan_checkpoint_dir(wildcards):
    """Outside the rule's outputs: Snakemake deletes outputs of failed jobs, not this."""
    return str(RESULTS / "checkpoints" / "gan" / RUN.format(repeat=wildcards.repeat, fold=wildcards.fold))


def strategy_settings(wildcards):
    """Only this strategy's entry, so editing another strategy does not re-run this one's folds."""
    return {wildcards.strategy: config["strategies"][wildcards.strategy]}


def preprocess_settings():
    """The keys that shape one scan's output; QC and duplicate decisions act later.

    ``assume_orientation`` is passed only when set, so a run made before the key
    existed does not re-preprocess every scan.
    """
    later = ("exclude_qc_outliers", "qc_min_correlation", "qc_outliers", "duplicate_correlation")
    settings = {k: v for k, v in config["preprocess"].items() if k not in later}
    if settings.get("assume_orientation") is None:
        settings.pop("assume_orientation", None)
    return settings


#: Every (repeat, fold) GAN, in repeat then fold order; scripts zip it with their inputs.
GAN_RUNS = [[repeat, fold] for repeat in REPEATS for fold in FOLDS]
#: Every (strategy, repeat, fold) classifier run, in table order; scripts zip it with their inputs.
CLASSIFIER_RUNS = [[strategy, repeat, fold] for strategy in STRATEGIES for repeat in REPEATS for fold in FOLDS]


def gan_outputs(name):
    """One GAN output per (repeat, fold), or none when no strategy uses the GAN."""
    return [str(RESULTS / "gan" / RUN.format(repeat=r, fold=k) / name) for r, k in GAN_RUNS] if USES_GAN else []


def classifier_outputs(name):
    return [
        str(RESULTS / "classify" / strategy / RUN.format(repeat=r, fold=k) / name) for strategy, r, k in CLASSIFIER_RUNS
    ]


def if_gan(*paths):
    """``paths`` under the results folder when a strategy uses the GAN, else none.

    A run whose strategies all have synthetic_share 0 (a control, a baseline-only
    study) trains no GAN, so nothing may ask for GAN outputs.
    """
    return [str(RESULTS / p) for p in paths] if USES_GAN else []


def final_outputs():
    return [
        str(RESULTS / "qc" / "summary.tsv"),
        str(RESULTS / "splits.json"),
        str(RESULTS / "tables" / "augmentation_comparison.csv"),
        str(RESULTS / "tables" / "resources.tsv"),
        str(RESULTS / "figures" / "strategy_comparison.png"),
        str(RESULTS / "report" / "front_page.html"),
    ] + if_gan("tables/gan_quality.csv", "figures/gan_losses.png")
