"""Train, select and test the 3D CNN for one (strategy, fold).

Model selection follows the study: train on the (possibly augmented and/or
synthetic-enriched) training set, pick the epoch with the best *validation*
balanced accuracy (ties: lower validation loss), stop after ``patience`` epochs
without improvement, and test that best-validation model. Validation and test
sets are real scans of subjects disjoint from the training subjects; the fold's
synthetic volumes come from a GAN trained on the fold's training subjects only.
:func:`run_fold` checks these invariants from the recorded IDs and raises
:class:`LeakageError` if one fails.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)
from torch import nn
from tqdm.auto import tqdm

from brainaug.classify.augment import RandomStudyAugmentation
from brainaug.classify.networks import build_classifier
from brainaug.classify.settings import ClassifierSettings
from brainaug.classify.trainset import build_training_set
from brainaug.dataset import load_dataset
from brainaug.device import adam, autocast, configure_backends, pick_device, resolve_precision
from brainaug.strategies import Strategy, parse_strategies

try:  # the splits module owns the leakage error when it exists
    from brainaug.splits import LeakageError
except ImportError:  # pragma: no cover - depends on what is installed alongside

    class LeakageError(RuntimeError):
        """A subject or synthetic volume crossed from training into validation/test."""


__all__ = [
    "LeakageError",
    "TrainOutput",
    "compute_metrics",
    "evaluate",
    "fold_seed",
    "load_classifier",
    "predict_proba",
    "run_fold",
    "train_classifier",
]

HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_bacc", "seconds"]


@dataclass
class TrainOutput:
    """Result of :func:`train_classifier`.

    Attributes:
        model: the network with the best-validation weights loaded, in eval mode.
        state_dict: CPU copy of the best-validation weights.
        history: one row per epoch, columns ``HISTORY_COLUMNS``.
        best_epoch: 1-based epoch of the selected model.
        epochs_run: number of epochs trained before stopping.
    """

    model: nn.Module
    state_dict: dict[str, torch.Tensor]
    history: pd.DataFrame
    best_epoch: int
    epochs_run: int


def _as_input(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(N, S, S, S)`` or ``(N, 1, S, S, S)`` array -> float32 tensor ``(N, 1, S, S, S)``."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    if t.ndim == 4:
        t = t.unsqueeze(1)
    if t.ndim != 5:
        raise ValueError(f"Expected volumes (N, S, S, S) or (N, 1, S, S, S), got shape {tuple(t.shape)}")
    return t


def classifier_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype of the classifier: ``auto`` is bf16 on CUDA only.

    On this project's AMX CPU, bf16 autocast made Conv5_FC3 training diverge to
    NaN within a few epochs at 32^3 (fp32 trained normally on the same data),
    so ``auto`` keeps the CPU in fp32; ``bf16`` still forces it.
    """
    if precision == "auto" and device.type != "cuda":
        return None
    return resolve_precision(precision, device)


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    batch_size: int = 8,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Class probabilities ``(N, n_classes)`` (softmax) in eval mode.

    Args:
        model: classifier mapping ``(B, 1, S, S, S)`` to logits.
        x: volumes ``(N, S, S, S)`` or ``(N, 1, S, S, S)`` (a memory map is read batch by batch).
        batch_size: evaluation batch size.
        device: where the model lives (default: the device of its first parameter).
        dtype: autocast dtype or None for fp32.
    """
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(x), batch_size):
            batch = _as_input(x[start : start + batch_size]).to(device)
            with autocast(device, dtype):
                logits = model(batch)
            out.append(torch.softmax(logits.float(), dim=1).cpu())
    finally:
        model.train(was_training)
    if not out:
        raise ValueError("predict_proba got no volumes")
    return torch.cat(out).numpy()


def compute_metrics(y: np.ndarray, proba: np.ndarray, n_classes: int | None = None) -> dict[str, Any]:
    """Classification metrics from true labels and predicted probabilities.

    A class absent from ``y`` is handled gracefully: balanced accuracy averages the
    recall of the classes present in ``y``; the macro one-vs-rest AUC averages over the
    classes that have both positives and negatives in ``y`` (NaN if none); F1 is macro
    over the classes present in ``y`` or predicted.

    Args:
        y: true labels ``(N,)``.
        proba: probabilities ``(N, n_classes)``.
        n_classes: defaults to ``proba.shape[1]``.

    Returns:
        dict with ``n``, ``accuracy``, ``balanced_accuracy``, ``auc_macro``, ``f1_macro``,
        ``loss`` (mean cross-entropy), ``confusion_matrix`` (nested list, rows true,
        columns predicted), ``auc_per_class`` (None where undefined).
    """
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if n_classes is None:
        n_classes = proba.shape[1]
    if proba.ndim != 2 or proba.shape != (len(y), n_classes):
        raise ValueError(f"Expected proba of shape ({len(y)}, {n_classes}), got {proba.shape}")
    pred = proba.argmax(axis=1)
    present = np.unique(np.concatenate([y, pred]))
    aucs: list[float | None] = []
    for c in range(n_classes):
        positives = y == c
        if positives.all() or not positives.any():
            aucs.append(None)
        else:
            aucs.append(float(roc_auc_score(positives, proba[:, c])))
    defined = [a for a in aucs if a is not None]
    eps = 1e-12
    loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], eps, 1.0))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        bacc = float(balanced_accuracy_score(y, pred))
    return {
        "n": int(len(y)),
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": bacc,
        "auc_macro": float(np.mean(defined)) if defined else float("nan"),
        "f1_macro": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
        "loss": loss,
        "confusion_matrix": confusion_matrix(y, pred, labels=list(range(n_classes))).tolist(),
        "auc_per_class": aucs,
    }


def evaluate(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    y: np.ndarray,
    batch_size: int = 8,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """Predict ``x`` and score against ``y``: :func:`compute_metrics` plus ``probabilities``.

    Args:
        model: classifier.
        x: volumes ``(N, S, S, S)`` or ``(N, 1, S, S, S)``.
        y: true labels ``(N,)``.
        batch_size, device, dtype: as in :func:`predict_proba`.

    Returns:
        metrics dict; ``probabilities`` is an ``(N, n_classes)`` array and ``predictions``
        an ``(N,)`` int array.
    """
    proba = predict_proba(model, x, batch_size=batch_size, device=device, dtype=dtype)
    metrics = compute_metrics(y, proba)
    metrics["probabilities"] = proba
    metrics["predictions"] = proba.argmax(axis=1)
    return metrics


def _is_better(candidate: tuple[float, float], best: tuple[float, float] | None) -> bool:
    """Higher balanced accuracy wins; on a tie, lower validation loss wins."""
    if best is None:
        return True
    bacc, loss = candidate
    best_bacc, best_loss = best
    if bacc > best_bacc + 1e-12:
        return True
    return abs(bacc - best_bacc) <= 1e-12 and loss < best_loss


def train_classifier(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    strategy: Strategy,
    settings: ClassifierSettings,
    classes: Sequence[str],
    log: IO[str] | None = None,
    device: torch.device | str | None = None,
    seed: int | None = None,
) -> TrainOutput:
    """Train with early stopping on validation balanced accuracy; return the best model.

    Augmentation (the study's roll + axial rotation) is applied on the fly to training
    batches only, when ``strategy.classic_augmentation``. Seeded: weight init, batch
    order, dropout and augmentation all derive from ``seed``, so two CPU runs give the
    same history.

    Args:
        train_x: float32 ``(N, S, S, S)`` training volumes (real, possibly plus synthetic).
        train_y: int ``(N,)`` labels.
        val_x: float32 ``(M, S, S, S)`` real validation volumes.
        val_y: int ``(M,)``.
        strategy: decides classic augmentation.
        settings: architecture and optimisation settings.
        classes: class names (``len(classes)`` outputs).
        log: text stream for the progress bar and per-epoch lines (default stderr).
        device: ``None``/``"auto"``, ``"cpu"``, ``"cuda"``... (see :func:`brainaug.device.pick_device`).
        seed: overrides ``settings.seed``.

    Returns:
        :class:`TrainOutput`.
    """
    n_classes = len(classes)
    train_y = np.asarray(train_y, dtype=np.int64)
    val_y = np.asarray(val_y, dtype=np.int64)
    if len(train_x) != len(train_y) or len(train_x) < 2:
        raise ValueError(
            f"Need at least 2 training volumes with one label each, got {len(train_x)} volumes "
            f"and {len(train_y)} labels"
        )
    if len(val_x) != len(val_y) or len(val_x) == 0:
        raise ValueError(
            f"Need at least 1 validation volume with one label each, got {len(val_x)} volumes "
            f"and {len(val_y)} labels"
        )
    for name, labels in (("train_y", train_y), ("val_y", val_y)):
        if labels.min() < 0 or labels.max() >= n_classes:
            raise ValueError(f"{name} must lie in [0, {n_classes - 1}] for classes {list(classes)}")
    image_size = int(np.shape(train_x)[-1])
    seed = settings.seed if seed is None else int(seed)
    device = pick_device(device)
    configure_backends(device)  # TF32 / cudnn autotuning on CUDA; nothing on CPU
    dtype = classifier_precision(settings.precision, device)
    stream = log if log is not None else sys.stderr

    torch.manual_seed(seed)
    model = build_classifier(settings, n_classes, image_size).to(device)
    optimizer = adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    weight = None
    if settings.class_weighted_loss:
        counts = np.bincount(train_y, minlength=n_classes).astype(np.float64)
        w = np.where(counts > 0, len(train_y) / (n_classes * np.maximum(counts, 1)), 0.0)
        weight = torch.as_tensor(w, dtype=torch.float32, device=device)
    criterion = nn.CrossEntropyLoss(weight=weight)
    augmenter = RandomStudyAugmentation(max_shift=settings.augment_max_shift) if strategy.classic_augmentation else None
    order_gen = torch.Generator().manual_seed(seed)
    aug_rng = np.random.default_rng([seed, 1])
    train_x = np.ascontiguousarray(train_x, dtype=np.float32)

    rows: list[dict[str, float]] = []
    best_key: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] = {}
    best_epoch, since_best = 0, 0
    bar = tqdm(
        total=settings.max_epochs, desc=f"{strategy.name}", unit="epoch", file=stream,
        dynamic_ncols=False, ncols=100, mininterval=0, ascii=True,
    )
    epoch = 0
    try:
        for epoch in range(1, settings.max_epochs + 1):
            t0 = time.perf_counter()
            model.train()
            perm = torch.randperm(len(train_y), generator=order_gen).numpy()
            batches = [perm[i : i + settings.batch_size] for i in range(0, len(perm), settings.batch_size)]
            if len(batches) > 1 and len(batches[-1]) == 1:
                batches.pop()  # BatchNorm cannot train on a single volume; it is reshuffled next epoch
            loss_sum, correct, seen = 0.0, 0, 0
            for idx in batches:
                xb = torch.from_numpy(train_x[idx]).unsqueeze(1)
                yb = torch.from_numpy(train_y[idx])
                if augmenter is not None:
                    xb, _ = augmenter.augment_batch(xb, aug_rng)
                xb, yb = xb.to(device), yb.to(device)
                with autocast(device, dtype):
                    logits = model(xb)
                    loss = criterion(logits.float(), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.detach().argmax(1) == yb).sum())
                seen += len(idx)
            val = compute_metrics(
                val_y, predict_proba(model, val_x, settings.batch_size, device, dtype), n_classes
            )
            row = {
                "epoch": epoch,
                "train_loss": loss_sum / seen,
                "train_acc": correct / seen,
                "val_loss": val["loss"],
                "val_acc": val["accuracy"],
                "val_bacc": val["balanced_accuracy"],
                "seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            key = (row["val_bacc"], row["val_loss"])
            if _is_better(key, best_key):
                best_key, best_epoch, since_best = key, epoch, 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
            bar.set_postfix(
                loss=f"{row['train_loss']:.3f}", val_bacc=f"{row['val_bacc']:.3f}", best=best_epoch,
                refresh=False,
            )
            bar.update(1)
            tqdm.write(
                f"epoch {epoch:3d}  train_loss {row['train_loss']:.4f}  train_acc {row['train_acc']:.3f}  "
                f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:.3f}  "
                f"val_bacc {row['val_bacc']:.3f}  {row['seconds']:.2f}s"
                + ("  *best*" if best_epoch == epoch else ""),
                file=stream,
            )
            if since_best >= settings.patience and epoch >= settings.min_epochs:
                tqdm.write(f"early stop: no better val_bacc for {since_best} epochs", file=stream)
                break
    finally:
        bar.close()
    model.load_state_dict(best_state)
    model.eval()
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return TrainOutput(model=model, state_dict=best_state, history=history, best_epoch=best_epoch, epochs_run=epoch)


# ---------------------------------------------------------------------------------------
# One (strategy, fold) end to end
# ---------------------------------------------------------------------------------------


def fold_seed(base_seed: int, fold: int) -> int:
    """Seed for one fold; the same for every strategy, so strategies differ only by data."""
    return int(np.random.SeedSequence([int(base_seed), int(fold)]).generate_state(1)[0] % (2**31))


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_fold(splits_path: Path, fold: int) -> tuple[list[str], dict[str, Any]]:
    try:
        splits = json.loads(Path(splits_path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"Cannot read splits file {splits_path}: {err}") from err
    for key in ("classes", "folds"):
        if key not in splits:
            raise ValueError(f"{splits_path} has no {key!r} entry")
    for entry in splits["folds"]:
        if int(entry.get("fold", -1)) == int(fold):
            for role in ("train", "val", "test"):
                if role not in entry:
                    raise ValueError(f"{splits_path}: fold {fold} has no {role!r} list")
            return list(splits["classes"]), entry
    raise ValueError(
        f"{splits_path} has no fold {fold}; folds are {[e.get('fold') for e in splits['folds']]}"
    )


def _check_disjoint(roles: Mapping[str, set[str]], what: str) -> None:
    names = list(roles)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = roles[a] & roles[b]
            if common:
                raise LeakageError(
                    f"{what} appear in both {a} and {b}: {sorted(common)[:5]}"
                    + (" ..." if len(common) > 5 else "")
                )


def _load_synthetic(
    npz_path: Path, classes: Sequence[str], image_size: int, train_subjects: set[str],
    heldout_subjects: set[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Load the fold's synthetic pool and check the GAN saw training subjects only."""
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            volumes = np.asarray(data["volumes"], dtype=np.float32)
            labels = np.asarray(data["labels"], dtype=np.int64)
            pool_classes = [str(c) for c in data["classes"]] if "classes" in data else None
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(
            f"Cannot read synthetic pool {npz_path} (expected arrays 'volumes', 'labels', 'classes'): {err}"
        ) from err
    if pool_classes is not None and pool_classes != list(classes):
        raise ValueError(f"{npz_path} has classes {pool_classes}, expected {list(classes)}")
    if volumes.ndim != 4 or volumes.shape[1:] != (image_size,) * 3 or len(volumes) != len(labels):
        raise ValueError(
            f"{npz_path}: expected volumes (M, {image_size}, {image_size}, {image_size}) and M labels, "
            f"got volumes {volumes.shape} and {labels.shape} labels"
        )
    metrics_path = Path(npz_path).parent / "metrics.json"
    if metrics_path.is_file():
        gan_subjects = set(map(str, json.loads(metrics_path.read_text()).get("train_subjects", [])))
        leaked = gan_subjects & heldout_subjects
        if leaked:
            raise LeakageError(
                f"The GAN behind {npz_path} trained on validation/test subjects {sorted(leaked)[:5]}"
            )
        foreign = gan_subjects - train_subjects
        if foreign:
            raise LeakageError(
                f"The GAN behind {npz_path} trained on subjects outside this fold's training set: "
                f"{sorted(foreign)[:5]}"
            )
    return volumes, labels


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
) -> dict[str, Any]:
    """Train and test the classifier of one (strategy, fold) and write its outputs.

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
        fold: fold number.
        strategy_name: key of the config's ``strategies`` section.
        cfg: the whole config (reads ``classifier`` and ``strategies``).
        synthetic_npz: the fold's ``synthetic.npz``; may be None for strategies without
            synthetic data. If a ``metrics.json`` lies next to it, its ``train_subjects``
            must be a subset of this fold's training subjects.
        outdir: output folder (created).
        log: text stream for progress (default stderr).
        device: training device (default: CUDA if available, else CPU).

    Returns:
        The metrics dict written to ``metrics.json``.

    Raises:
        LeakageError: a subject is in two roles, or the GAN saw non-training subjects.
        ValueError: malformed inputs (names the file and what was expected).
    """
    t_start = time.perf_counter()
    dataset_dir, outdir = Path(dataset_dir), Path(outdir)
    strategies = parse_strategies(cfg.get("strategies"))
    if strategy_name not in strategies:
        raise ValueError(f"Unknown strategy {strategy_name!r}; configured: {list(strategies)}")
    strategy = strategies[strategy_name]
    settings = ClassifierSettings.from_config(cfg.get("classifier"))
    classes, entry = _read_fold(Path(splits_path), fold)
    roles = {role: set(map(str, entry[role])) for role in ("train", "val", "test")}
    _check_disjoint(roles, "Subjects")

    volumes, index = load_dataset(dataset_dir / "volumes.npy", dataset_dir / "index.tsv")
    image_size = int(volumes.shape[-1])
    index = index.reset_index(drop=True)
    known = [c for c in index["diagnosis"].unique() if c not in classes]
    if known:
        raise ValueError(f"{dataset_dir / 'index.tsv'} has diagnoses {known} not in classes {classes}")
    expected = index["diagnosis"].map({c: i for i, c in enumerate(classes)})
    if not (expected.to_numpy() == index["label"].to_numpy()).all():
        raise ValueError(f"{dataset_dir / 'index.tsv'}: 'label' does not match the class order {classes}")
    split_rows = {role: index[index["subject_id"].isin(roles[role])] for role in roles}
    for role, rows in split_rows.items():
        if rows.empty:
            raise ValueError(f"Fold {fold} has no scans for its {role} subjects in {dataset_dir / 'index.tsv'}")
    _check_disjoint({r: set(rows["scan_id"]) for r, rows in split_rows.items()}, "Scans")

    def take(role: str) -> tuple[np.ndarray, np.ndarray]:
        rows = split_rows[role]
        positions = rows.index.to_numpy()
        return np.asarray(volumes[positions], dtype=np.float32), rows["label"].to_numpy(dtype=np.int64)

    train_x, train_y = take("train")
    val_x, val_y = take("val")
    test_x, test_y = take("test")

    seed = fold_seed(settings.seed, fold)
    syn_x = syn_y = None
    if strategy.uses_synthetic:
        if synthetic_npz is None:
            raise ValueError(f"Strategy {strategy_name!r} uses synthetic data but no synthetic.npz was given")
        syn_x, syn_y = _load_synthetic(
            Path(synthetic_npz), classes, image_size, roles["train"], roles["val"] | roles["test"]
        )
    mix_x, mix_y, is_syn = build_training_set(
        train_x, train_y, syn_x, syn_y, strategy, np.random.default_rng([seed, 2]), classes=classes
    )
    del syn_x
    stream = log if log is not None else sys.stderr
    print(
        f"[classify] strategy={strategy_name} fold={fold} real_train={len(train_y)} "
        f"synthetic_train={int(is_syn.sum())} val={len(val_y)} test={len(test_y)} S={image_size}",
        file=stream, flush=True,
    )
    result = train_classifier(
        mix_x, mix_y, val_x, val_y, strategy, settings, classes, log=log, device=device, seed=seed
    )
    dev = next(result.model.parameters()).device
    dtype = classifier_precision(settings.precision, dev)
    evals = {
        "val": evaluate(result.model, val_x, val_y, settings.batch_size, dev, dtype),
        "test": evaluate(result.model, test_x, test_y, settings.batch_size, dev, dtype),
    }

    # Invariants, from the recorded IDs: evaluated scans are real scans of held-out subjects.
    for role in ("val", "test"):
        evaluated = set(split_rows[role]["subject_id"])
        if evaluated & roles["train"]:
            raise LeakageError(f"{role} scans of training subjects: {sorted(evaluated & roles['train'])[:5]}")
    if len(mix_y) - int(is_syn.sum()) != len(train_y):
        raise LeakageError("The training set's real part differs from the fold's training scans")

    pred_frames = []
    for role in ("val", "test"):
        rows = split_rows[role]
        ev = evals[role]
        frame = pd.DataFrame(
            {
                "scan_id": rows["scan_id"].to_numpy(),
                "subject_id": rows["subject_id"].to_numpy(),
                "split": role,
                "true": [classes[i] for i in rows["label"]],
                "pred": [classes[i] for i in ev["predictions"]],
                "true_label": rows["label"].to_numpy(dtype=np.int64),
                "pred_label": ev["predictions"].astype(np.int64),
            }
        )
        for c, name in enumerate(classes):
            frame[f"prob_{name}"] = ev["probabilities"][:, c]
        pred_frames.append(frame)
    predictions = pd.concat(pred_frames, ignore_index=True)

    def scores(ev: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in ev.items() if k not in ("probabilities", "predictions")}

    metrics: dict[str, Any] = {
        "strategy": strategy_name,
        "fold": int(fold),
        "classes": list(classes),
        "image_size": image_size,
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
        "n_real_train": int(len(train_y)),
        "n_synthetic_train": int(is_syn.sum()),
        "n_synthetic_train_per_class": {
            name: int(((mix_y == c) & is_syn).sum()) for c, name in enumerate(classes)
        },
        "n_val": int(len(val_y)),
        "n_test": int(len(test_y)),
        "train_subjects": sorted(roles["train"]),
        "val_subjects": sorted(roles["val"]),
        "test_subjects": sorted(roles["test"]),
        "train_scans": sorted(split_rows["train"]["scan_id"]),
        "val_scans": sorted(split_rows["val"]["scan_id"]),
        "test_scans": sorted(split_rows["test"]["scan_id"]),
        "strategy_settings": strategy.to_dict(),
        "classifier_settings": settings.to_dict(),
        "seed": seed,
        "device": str(dev),
        "seconds": time.perf_counter() - t_start,
    }

    outdir.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": result.state_dict,
        "settings": settings.to_dict(),
        "strategy": strategy.to_dict(),
        "classes": list(classes),
        "image_size": image_size,
        "fold": int(fold),
        "best_epoch": result.best_epoch,
        "seed": seed,
    }
    _atomic_write(outdir / "model.pt", lambda tmp: torch.save(checkpoint, tmp))
    _atomic_write(outdir / "history.tsv", lambda tmp: result.history.to_csv(tmp, sep="\t", index=False))
    _atomic_write(outdir / "predictions.tsv", lambda tmp: predictions.to_csv(tmp, sep="\t", index=False))
    _atomic_write(
        outdir / "metrics.json",
        lambda tmp: Path(tmp).write_text(json.dumps(_jsonable(metrics), indent=2, allow_nan=True)),
    )
    return metrics


def _jsonable(obj: Any) -> Any:
    """NaN -> None recursively so metrics.json is strict JSON."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def load_classifier(path: str | Path, device: torch.device | str | None = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a classifier from ``model.pt`` (architecture from the stored settings).

    Args:
        path: checkpoint written by :func:`run_fold`.
        device: where to put the model.

    Returns:
        ``(model in eval mode, checkpoint dict)``.
    """
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as err:
        raise ValueError(f"Cannot load classifier checkpoint {path}: {err}") from err
    settings = ClassifierSettings.from_config(checkpoint["settings"])
    model = build_classifier(settings, len(checkpoint["classes"]), int(checkpoint["image_size"]))
    model.load_state_dict(checkpoint["state_dict"])
    model.to(pick_device(device)).eval()
    return model, checkpoint
