"""The classifier's training loop: seeded, early-stopped on a validation score.

Model selection: pick the epoch with the best *validation* score and stop
after ``patience`` epochs without improvement; the caller tests that
best-validation model. The score is ``classifier.selection``: the study's
balanced accuracy (ties: lower loss), or the cross-entropy loss (ties: higher
balanced accuracy). With the embedded cohort's 8-10 validation subjects,
balanced accuracy moves in steps of 10 points, and a classifier still at
chance often scores a lucky high epoch: in 3 of 6 folds of one `standard_aug`
run the selected epoch came before training accuracy had passed 0.6. The loss
is continuous and penalises a confident wrong answer, so the laptop default
selects on it (benchmarks/README.md, "Selecting the epoch on validation loss").
Even the loss can favour a model that has learned nothing: one still near
uniform is never confidently wrong, so in 5 of 240 jobs of six default runs
(all augmented: they leave chance later) the lowest validation loss came
before training accuracy had passed 0.6, mostly at epoch 1, and the fold was
tested untrained (22-67 %). ``classifier.selection_from_train_accuracy`` lets
epochs count for selection and early stopping only once training accuracy has
reached it.

Two rules keep the strategies comparable (so the table measures augmentation,
not training length or a train/test shift):

* Equal budgets. An epoch is a fixed number of optimizer steps, set by the
  size of the *real* training set, whatever the strategy adds to it: a
  training set doubled by synthetic volumes gets the same number of steps,
  not twice as many. Batches are drawn from successive shuffles of the whole
  (real + synthetic) set, so every volume is still seen.
* Normalisation statistics from real, un-augmented training volumes. BatchNorm
  trains on batch statistics of augmented or partly synthetic batches, which
  then would be applied to clean real validation and test volumes. Before each
  validation the running statistics are re-estimated on the real training
  volumes as they are (``bn_statistics: real_train``; ``running`` keeps
  PyTorch's running averages, for the ablation).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from brainaug.classify.augment import RandomStudyAugmentation
from brainaug.classify.networks import CenteredInput, build_classifier
from brainaug.classify.predict import classifier_precision, compute_metrics, predict_proba
from brainaug.classify.settings import ClassifierSettings
from brainaug.device import adam, autocast, configure_backends, pick_device
from brainaug.strategies import Strategy
from brainaug.template import grid_spacing

__all__ = ["HISTORY_COLUMNS", "TrainOutput", "batch_stream", "recalibrate_batchnorm", "selection_key", "train_classifier"]

HISTORY_COLUMNS = ["epoch", "steps", "train_loss", "train_acc", "val_loss", "val_acc", "val_bacc", "seconds"]


@dataclass
class TrainOutput:
    """Result of :func:`train_classifier`.

    Attributes:
        model: the network with the best-validation weights loaded, in eval mode.
        state_dict: CPU copy of the best-validation weights.
        history: one row per epoch, columns ``HISTORY_COLUMNS``.
        best_epoch: 1-based epoch of the selected model.
        epochs_run: number of epochs trained before stopping.
        selection_from_epoch: the first epoch that counted for selection (training accuracy
            reached ``settings.selection_from_train_accuracy``), or None when none did and
            the best epoch overall was taken.
    """

    model: nn.Module
    state_dict: dict[str, torch.Tensor]
    history: pd.DataFrame
    best_epoch: int
    epochs_run: int
    selection_from_epoch: int | None


def selection_key(val_bacc: float, val_loss: float, selection: str) -> tuple[float, float]:
    """A validation score as a pair where higher is better, compared first element first.

    ``balanced_accuracy``: (balanced accuracy, -loss); ``loss``: (-loss, balanced accuracy).
    """
    if selection == "balanced_accuracy":
        return (val_bacc, -val_loss)
    if selection == "loss":
        return (-val_loss, val_bacc)
    raise ValueError(f"selection must be 'balanced_accuracy' or 'loss', got {selection!r}")


def _is_better(candidate: tuple[float, float], best: tuple[float, float] | None) -> bool:
    """The higher first element wins; on a tie (within 1e-12), the higher second element."""
    if best is None:
        return True
    if candidate[0] > best[0] + 1e-12:
        return True
    return abs(candidate[0] - best[0]) <= 1e-12 and candidate[1] > best[1]


def _cpu_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights, kept while training goes on changing them."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def batch_stream(n: int, batch_size: int, generator: torch.Generator) -> Iterator[np.ndarray]:
    """Endless batches of ``min(batch_size, n)`` indices from successive shuffles of ``range(n)``.

    Why: with budgets counted in steps, an epoch no longer ends where a shuffle
    does; carrying the rest of one shuffle into the next keeps every volume equally
    often seen, and batches are never of one volume (BatchNorm cannot train on one).
    """
    size = min(batch_size, n)
    pending = np.empty(0, dtype=np.int64)
    while True:
        while len(pending) < size:
            pending = np.concatenate([pending, torch.randperm(n, generator=generator).numpy()])
        yield pending[:size]
        pending = pending[size:]


def recalibrate_batchnorm(
    model: nn.Module,
    volumes: np.ndarray,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> None:
    """Re-estimate every BatchNorm's running mean and variance on ``volumes`` (no gradients).

    The estimate is the plain average over batches (``momentum=None``), as in
    ``torch.optim.swa_utils.update_bn``; dropout is off while it runs. Batches are
    split evenly so none holds a single volume.

    Args:
        model: the classifier (left in the train/eval mode it had).
        volumes: real, un-augmented training volumes ``(N, S, S, S)``, N >= 2.
        batch_size: largest batch.
        device: where the model lives.
        dtype: autocast dtype or None for fp32.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    was_training = model.training
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    n = len(volumes)
    try:
        with torch.no_grad():
            for chunk in np.array_split(np.arange(n), max(1, -(-n // batch_size))):
                xb = torch.from_numpy(np.asarray(volumes[chunk], dtype=np.float32)).unsqueeze(1).to(device)
                with autocast(device, dtype):
                    model(xb)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)


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
    real_train_x: np.ndarray | None = None,
    spacing_mm: Sequence[float] | None = None,
) -> TrainOutput:
    """Train with early stopping on a validation score (``settings.selection``); return the best model.

    Augmentation (the study's roll + axial rotation, in mm on the voxel grid) is applied
    on the fly to training batches only, when ``strategy.classic_augmentation``. Seeded: weight init, batch
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
        real_train_x: the real, un-augmented training volumes inside ``train_x``; they
            set the epoch length (``ceil(len / batch_size)`` steps, equal for every
            strategy) and the BatchNorm statistics. Default: all of ``train_x``.
        spacing_mm: voxel size (mm) per axis (x, y, z), so that classic augmentation rolls
            by ``settings.augment_max_shift_mm`` and rotates physical space. Default: the
            template grid of the volumes' size (:func:`brainaug.template.grid_spacing`),
            where the workflow's datasets lie.

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

    if settings.head == "ordinal":
        stream.write(f"ordinal head: the classes are taken in the order {' < '.join(classes)}\n")
    torch.manual_seed(seed)
    model = build_classifier(settings, n_classes, image_size).to(device)
    optimizer = adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    weight = None
    if settings.class_weighted_loss:
        counts = np.bincount(train_y, minlength=n_classes).astype(np.float64)
        w = np.where(counts > 0, len(train_y) / (n_classes * np.maximum(counts, 1)), 0.0)
        weight = torch.as_tensor(w, dtype=torch.float32, device=device)
    criterion = nn.CrossEntropyLoss(weight=weight)
    order_gen = torch.Generator().manual_seed(seed)
    aug_rng = np.random.default_rng([seed, 1])
    train_x = np.ascontiguousarray(train_x, dtype=np.float32)
    real_x = train_x if real_train_x is None else real_train_x
    if len(real_x) < 2:
        raise ValueError(f"Need at least 2 real training volumes, got {len(real_x)}")
    steps_per_epoch = -(-len(real_x) // settings.batch_size)
    # A centred model sees each brain's deviation from the mean training brain, so
    # augmentation moves that deviation (outside the brain it is 0), not the brain:
    # a shifted brain minus the unshifted reference would be all edges.
    offset: torch.Tensor | float = 0.0
    if isinstance(model, CenteredInput):
        model.fit(torch.from_numpy(np.asarray(real_x, dtype=np.float32)).to(device))
        offset = model.reference.detach().cpu()
    augmenter = None
    if strategy.classic_augmentation:
        if spacing_mm is None:
            try:
                spacing_mm = grid_spacing(image_size)
            except ValueError as err:
                raise ValueError(
                    f"Classic augmentation needs the voxel size of {image_size}^3 volumes: pass spacing_mm "
                    f"(there is no template grid of that size: {err})"
                ) from err
        augmenter = RandomStudyAugmentation.physical(
            spacing_mm,
            settings.augment_max_shift_mm,
            background=-1.0 if isinstance(offset, float) else 0.0,
            rotation=settings.augment_rotation,
            steps=settings.augment_steps,
        )
    batches = batch_stream(len(train_y), settings.batch_size, order_gen)

    rows: list[dict[str, float]] = []
    best_key: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] = {}
    best_epoch, since_best = 0, 0
    # Until training accuracy reaches the threshold, epochs do not count; the best of them
    # is kept only in case none ever does.
    counting_from: int | None = None
    fallback: tuple[tuple[float, float] | None, int, dict[str, torch.Tensor]] = (None, 0, {})
    bar = tqdm(
        total=settings.max_epochs, desc=f"{strategy.name}", unit="epoch", file=stream,
        dynamic_ncols=False, ncols=100, mininterval=0, ascii=True,
    )
    epoch = steps = 0
    try:
        for epoch in range(1, settings.max_epochs + 1):
            t0 = time.perf_counter()
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            for _, idx in zip(range(steps_per_epoch), batches):
                steps += 1
                xb = torch.from_numpy(train_x[idx]).unsqueeze(1)
                yb = torch.from_numpy(train_y[idx])
                if augmenter is not None:
                    xb = augmenter.augment_batch(xb - offset, aug_rng)[0] + offset
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
            if settings.bn_statistics == "real_train":
                recalibrate_batchnorm(model, real_x, settings.batch_size, device, dtype)
            val = compute_metrics(
                val_y, predict_proba(model, val_x, settings.batch_size, device, dtype), n_classes
            )
            row = {
                "epoch": epoch,
                "steps": steps,
                "train_loss": loss_sum / seen,
                "train_acc": correct / seen,
                "val_loss": val["loss"],
                "val_acc": val["accuracy"],
                "val_bacc": val["balanced_accuracy"],
                "seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            key = selection_key(row["val_bacc"], row["val_loss"], settings.selection)
            if counting_from is None and row["train_acc"] >= settings.selection_from_train_accuracy:
                counting_from = epoch
            if counting_from is None:
                if _is_better(key, fallback[0]):
                    fallback = (key, epoch, _cpu_weights(model))
            elif _is_better(key, best_key):
                best_key, best_epoch, since_best = key, epoch, 0
                best_state = _cpu_weights(model)
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
                + ("  *best*" if best_epoch == epoch else "")
                + ("  (not counted: training accuracy below "
                   f"{settings.selection_from_train_accuracy:g})" if counting_from is None else ""),
                file=stream,
            )
            if counting_from is not None and since_best >= settings.patience and epoch >= settings.min_epochs:
                tqdm.write(f"early stop: no better validation {settings.selection} for {since_best} epochs", file=stream)
                break
    finally:
        bar.close()
    if counting_from is None:
        _, best_epoch, best_state = fallback
        tqdm.write(
            f"training accuracy never reached {settings.selection_from_train_accuracy:g} in {epoch} epochs: "
            f"testing the best validation {settings.selection} of all epochs (epoch {best_epoch})",
            file=stream,
        )
    model.load_state_dict(best_state)
    model.eval()
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return TrainOutput(
        model=model, state_dict=best_state, history=history, best_epoch=best_epoch, epochs_run=epoch,
        selection_from_epoch=counting_from,
    )
