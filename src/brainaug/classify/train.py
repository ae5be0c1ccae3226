"""One (strategy, fold) end to end: read the fold, train, test, write.

The steps live in their own modules: :mod:`brainaug.classify.fold_data` (the
fold's real and synthetic data, with the leakage guard),
:mod:`brainaug.classify.loop` (training with early stopping) and
:mod:`brainaug.classify.predict` (scores and output files); this module only
puts them in order and records what was done in ``metrics.json``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from brainaug.classify.fold_data import FoldData, classifier_seed, load_synthetic_pool, read_fold
from brainaug.classify.loop import TrainOutput, train_classifier
from brainaug.classify.predict import classifier_precision, evaluate, prediction_table, write_fold_outputs
from brainaug.classify.settings import ClassifierSettings
from brainaug.classify.trainset import build_training_set
from brainaug.leakage import LeakageError
from brainaug.strategies import Strategy, parse_strategies

__all__ = ["run_fold"]


def run_fold(
    dataset_dir: str | Path,
    splits_path: str | Path,
    fold: int,
    strategy_name: str,
    cfg: Mapping[str, Any],
    synthetic_npz: str | Path | None,
    outdir: str | Path,
    log: IO[str] | None = None,
    device: torch.device | str | None = None,
    repeat: int = 0,
) -> dict[str, Any]:
    """Train and test the classifier of one (strategy, repeat, fold) and write its outputs.

    Reads ``{dataset_dir}/volumes.npy`` (memory-mapped) and ``index.tsv`` and the fold's
    subject lists from ``splits.json``; builds the training set from the fold's real
    training scans plus the strategy's share of the fold's synthetic pool; trains with
    early stopping on the real validation scans; tests the best-validation model on the
    real validation and test scans. Writes to ``outdir``: ``model.pt`` (best state dict,
    settings, strategy, classes, image size; atomic), ``history.tsv``, ``predictions.tsv``
    (per val/test scan: ``scan_id, subject_id, split, true, pred, true_label,
    pred_label, prob_<class>...``; ``true``/``pred`` are class names) and ``metrics.json``.

    Args:
        dataset_dir: folder with ``volumes.npy`` and ``index.tsv``.
        splits_path: ``splits.json``.
        fold: fold number (within its repeat).
        strategy_name: key of the config's ``strategies`` section.
        cfg: the whole config (reads ``classifier`` and ``strategies``).
        synthetic_npz: the fold's ``synthetic.npz``; may be None for strategies without
            synthetic data. If a ``metrics.json`` lies next to it, its ``train_subjects``
            must be a subset of this fold's training subjects.
        outdir: output folder (created).
        log: text stream for progress (default stderr).
        device: training device (default: CUDA if available, else CPU).
        repeat: cross-validation repeat; sets the fold's subjects and, through
            :func:`brainaug.classify.fold_data.classifier_seed`, the seed.

    Returns:
        The metrics dict written to ``metrics.json``.

    Raises:
        LeakageError: a subject is in two roles, or the GAN saw non-training subjects.
        ValueError: malformed inputs (names the file and what was expected).
    """
    t_start = time.perf_counter()
    strategies = parse_strategies(cfg.get("strategies"))
    if strategy_name not in strategies:
        raise ValueError(f"Unknown strategy {strategy_name!r}; configured: {list(strategies)}")
    strategy = strategies[strategy_name]
    settings = ClassifierSettings.from_config(cfg.get("classifier"))
    data = read_fold(dataset_dir, splits_path, fold, repeat=repeat)
    seed = classifier_seed(settings.seed, fold, repeat=repeat)
    syn_x = syn_y = None
    if strategy.uses_synthetic:
        if synthetic_npz is None:
            raise ValueError(f"Strategy {strategy_name!r} uses synthetic data but no synthetic.npz was given")
        syn_x, syn_y = load_synthetic_pool(synthetic_npz, data.classes, data.image_size, data.subjects)
    mix_x, mix_y, is_syn = build_training_set(
        data.x["train"], data.y["train"], syn_x, syn_y, strategy, np.random.default_rng([seed, 2]),
        classes=data.classes,
    )
    del syn_x
    print(
        f"[classify] strategy={strategy_name} repeat={repeat} fold={fold} real_train={len(data.y['train'])} "
        f"synthetic_train={int(is_syn.sum())} val={len(data.y['val'])} test={len(data.y['test'])} "
        f"S={data.image_size}",
        file=log if log is not None else sys.stderr, flush=True,
    )
    result = train_classifier(
        mix_x, mix_y, data.x["val"], data.y["val"], strategy, settings, data.classes,
        log=log, device=device, seed=seed, real_train_x=data.x["train"], spacing_mm=data.spacing_mm,
    )
    dev = next(result.model.parameters()).device
    dtype = classifier_precision(settings.precision, dev)
    evals = {
        role: evaluate(result.model, data.x[role], data.y[role], settings.batch_size, dev, dtype)
        for role in ("val", "test")
    }
    _check_evaluated(data, mix_y, is_syn)
    metrics = _fold_metrics(data, strategy, settings, result, evals, mix_y, is_syn, fold, seed, dev, repeat)
    metrics["seconds"] = time.perf_counter() - t_start
    checkpoint = {
        "state_dict": result.state_dict,
        "settings": settings.to_dict(),
        "strategy": strategy.to_dict(),
        "classes": list(data.classes),
        "image_size": data.image_size,
        "repeat": int(repeat),
        "fold": int(fold),
        "best_epoch": result.best_epoch,
        "seed": seed,
    }
    predictions = prediction_table(data.rows, evals, data.classes)
    write_fold_outputs(Path(outdir), checkpoint, result.history, predictions, metrics)
    return metrics


def _check_evaluated(data: FoldData, mix_y: np.ndarray, is_syn: np.ndarray) -> None:
    """Invariants, from the recorded IDs: evaluated scans are real scans of held-out subjects."""
    for role in ("val", "test"):
        evaluated = set(data.rows[role]["subject_id"])
        if evaluated & data.subjects["train"]:
            raise LeakageError(f"{role} scans of training subjects: {sorted(evaluated & data.subjects['train'])[:5]}")
    if len(mix_y) - int(is_syn.sum()) != len(data.y["train"]):
        raise LeakageError("The training set's real part differs from the fold's training scans")


def _fold_metrics(
    data: FoldData,
    strategy: Strategy,
    settings: ClassifierSettings,
    result: TrainOutput,
    evals: Mapping[str, dict[str, Any]],
    mix_y: np.ndarray,
    is_syn: np.ndarray,
    fold: int,
    seed: int,
    device: torch.device,
    repeat: int = 0,
) -> dict[str, Any]:
    """The ``metrics.json`` of one (strategy, repeat, fold): scores, and the subject and scan lists
    that :func:`brainaug.leakage.check_leakage` checks before the table is built."""

    def scores(ev: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in ev.items() if k not in ("probabilities", "predictions")}

    return {
        "strategy": strategy.name,
        "repeat": int(repeat),
        "fold": int(fold),
        "classes": list(data.classes),
        "image_size": data.image_size,
        "val_accuracy": evals["val"]["accuracy"],
        "val_balanced_accuracy": evals["val"]["balanced_accuracy"],
        "val_auc_macro": evals["val"]["auc_macro"],
        "test_accuracy": evals["test"]["accuracy"],
        "test_balanced_accuracy": evals["test"]["balanced_accuracy"],
        "test_auc_macro": evals["test"]["auc_macro"],
        "test_f1_macro": evals["test"]["f1_macro"],
        "val": scores(evals["val"]),
        "test": scores(evals["test"]),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "selection_from_epoch": result.selection_from_epoch,
        "n_real_train": int(len(data.y["train"])),
        "n_synthetic_train": int(is_syn.sum()),
        "n_synthetic_train_per_class": {
            name: int(((mix_y == c) & is_syn).sum()) for c, name in enumerate(data.classes)
        },
        "n_val": int(len(data.y["val"])),
        "n_test": int(len(data.y["test"])),
        "train_subjects": sorted(data.subjects["train"]),
        "val_subjects": sorted(data.subjects["val"]),
        "test_subjects": sorted(data.subjects["test"]),
        "train_scans": sorted(data.rows["train"]["scan_id"]),
        "val_scans": sorted(data.rows["val"]["scan_id"]),
        "test_scans": sorted(data.rows["test"]["scan_id"]),
        "strategy_settings": strategy.to_dict(),
        "classifier_settings": settings.to_dict(),
        "seed": seed,
        "device": str(device),
    }
