"""Prediction, scoring, and the files a trained (strategy, fold) leaves behind.

Scoring is one pure function (:func:`compute_metrics`) used for validation at every
epoch, for the final validation and test scores, and by the results step on saved
models, so a number in the table means the same thing wherever it was computed.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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

from brainaug.classify.networks import build_classifier
from brainaug.classify.settings import ClassifierSettings
from brainaug.device import autocast, pick_device, resolve_precision
from brainaug.io.atomic import atomic_output

__all__ = [
    "classifier_precision",
    "compute_metrics",
    "evaluate",
    "load_classifier",
    "predict_proba",
    "prediction_table",
    "write_fold_outputs",
]


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


def prediction_table(
    rows: Mapping[str, pd.DataFrame], evals: Mapping[str, Mapping[str, Any]], classes: Sequence[str]
) -> pd.DataFrame:
    """One row per evaluated scan (``predictions.tsv``), so every score can be recomputed per subject.

    Args:
        rows: role (``val``, ``test``) -> the role's index rows (``scan_id``, ``subject_id``, ``label``).
        evals: role -> :func:`evaluate`'s output for those rows, in the same order.
        classes: class names in label order.
    """
    frames = []
    for role, ev in evals.items():
        role_rows = rows[role]
        frame = pd.DataFrame(
            {
                "scan_id": role_rows["scan_id"].to_numpy(),
                "subject_id": role_rows["subject_id"].to_numpy(),
                "split": role,
                "true": [classes[i] for i in role_rows["label"]],
                "pred": [classes[i] for i in ev["predictions"]],
                "true_label": role_rows["label"].to_numpy(dtype=np.int64),
                "pred_label": ev["predictions"].astype(np.int64),
            }
        )
        for c, name in enumerate(classes):
            frame[f"prob_{name}"] = ev["probabilities"][:, c]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def write_fold_outputs(
    outdir: Path,
    checkpoint: Mapping[str, Any],
    history: pd.DataFrame,
    predictions: pd.DataFrame,
    metrics: Mapping[str, Any],
) -> None:
    """Write ``model.pt``, ``history.tsv``, ``predictions.tsv`` and ``metrics.json``, each atomically,
    metrics last: Snakemake and the results step take ``metrics.json`` as the sign of a finished fold."""
    outdir.mkdir(parents=True, exist_ok=True)
    with atomic_output(outdir / "model.pt", suffix=".tmp") as tmp:
        torch.save(dict(checkpoint), tmp)
    with atomic_output(outdir / "history.tsv", suffix=".tmp") as tmp:
        history.to_csv(tmp, sep="\t", index=False)
    with atomic_output(outdir / "predictions.tsv", suffix=".tmp") as tmp:
        predictions.to_csv(tmp, sep="\t", index=False)
    with atomic_output(outdir / "metrics.json", suffix=".tmp") as tmp:
        tmp.write_text(json.dumps(_jsonable(metrics), indent=2, allow_nan=True))


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
    saved = dict(checkpoint["settings"])
    # Models written before these keys existed were uncentred, with ClinicaDL's softmax head.
    saved.setdefault("input_centering", "none")
    saved.setdefault("pooling", "flatten")
    saved.setdefault("pooled_blocks", 5)
    saved.setdefault("head", "softmax")
    # The roll range was in voxels before it was in mm; it does not shape the network.
    saved.pop("augment_max_shift", None)
    settings = ClassifierSettings.from_config(saved)
    model = build_classifier(settings, len(checkpoint["classes"]), int(checkpoint["image_size"]))
    model.load_state_dict(checkpoint["state_dict"])
    model.to(pick_device(device)).eval()
    return model, checkpoint
