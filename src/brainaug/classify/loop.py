"""The classifier's training loop: seeded, early-stopped on validation balanced accuracy.

Model selection follows the study: pick the epoch with the best *validation*
balanced accuracy (ties: lower validation loss) and stop after ``patience``
epochs without improvement; the caller tests that best-validation model.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from brainaug.classify.augment import RandomStudyAugmentation
from brainaug.classify.networks import build_classifier
from brainaug.classify.predict import classifier_precision, compute_metrics, predict_proba
from brainaug.classify.settings import ClassifierSettings
from brainaug.device import adam, autocast, configure_backends, pick_device
from brainaug.strategies import Strategy

__all__ = ["HISTORY_COLUMNS", "TrainOutput", "train_classifier"]

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
