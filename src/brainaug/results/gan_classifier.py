"""GAN metrics judged by a classifier trained on real scans only.

Voxel metrics (MMD, MS-SSIM) say whether samples look like brains; they do
not say whether an "AD" sample carries AD-like anatomy. A classifier trained
on the fold's real scans (the ``standard`` strategy) answers that: its
accuracy on samples of each intended diagnosis, and the Fréchet distance
between its penultimate-layer features of real and synthetic volumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score
from torch import nn

from brainaug.classify.networks import penultimate_features
from brainaug.classify.predict import predict_proba
from brainaug.results.frechet import frechet_distance

__all__ = ["classifier_gan_metrics", "extract_features"]


@torch.no_grad()
def extract_features(model: nn.Module, volumes: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Penultimate-layer features ``(N, F)`` of volumes ``(N, S, S, S)``."""
    model.eval()
    feats = []
    for start in range(0, len(volumes), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(volumes[start : start + batch_size], dtype=np.float32))
        feats.append(penultimate_features(model, batch.unsqueeze(1)).float().cpu().numpy())
    return np.concatenate(feats, axis=0)


def classifier_gan_metrics(
    model: nn.Module,
    real: np.ndarray,
    real_labels: np.ndarray,
    synthetic: np.ndarray,
    synthetic_labels: np.ndarray,
    classes: Sequence[str],
    batch_size: int = 16,
    test: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fréchet distance and intended-class accuracy of synthetic volumes.

    Args:
        model: classifier trained on the fold's real training scans.
        real: the fold's real training volumes ``(N, S, S, S)`` (what the GAN modelled).
        real_labels: ``(N,)`` integer labels.
        synthetic: synthetic volumes ``(M, S, S, S)``.
        synthetic_labels: ``(M,)`` intended labels.
        classes: class names in label order.
        test, test_labels: the fold's real test volumes; the judge's balanced
            accuracy on them is the yardstick for its score on synthetic volumes
            (a sample can carry its label at most as well as a real scan does).

    Returns:
        JSON-ready dict: ``frechet_distance`` overall and per class,
        ``synthetic_accuracy`` overall and per intended class, and the same
        classifier's accuracy on the real volumes for reference.
    """
    if real.shape[1:] != synthetic.shape[1:]:
        raise ValueError(f"Real volumes are {real.shape[1:]} but synthetic ones are {synthetic.shape[1:]}")
    real_feats = extract_features(model, real, batch_size)
    syn_feats = extract_features(model, synthetic, batch_size)
    syn_pred = predict_proba(model, synthetic, batch_size=batch_size).argmax(axis=1)
    real_pred = predict_proba(model, real, batch_size=batch_size).argmax(axis=1)
    out: dict[str, Any] = {
        "frechet_distance": frechet_distance(real_feats, syn_feats),
        "synthetic_accuracy": float(np.mean(syn_pred == synthetic_labels)),
        "synthetic_balanced_accuracy": float(balanced_accuracy_score(synthetic_labels, syn_pred)),
        "real_accuracy": float(np.mean(real_pred == real_labels)),
        "test_balanced_accuracy": None,
        "per_class": {},
    }
    if test is not None and len(test):
        test_pred = predict_proba(model, test, batch_size=batch_size).argmax(axis=1)
        out["test_balanced_accuracy"] = float(balanced_accuracy_score(test_labels, test_pred))
    for k, name in enumerate(classes):
        r, s = real_labels == k, synthetic_labels == k
        out["per_class"][name] = {
            "n_real": int(r.sum()),
            "n_synthetic": int(s.sum()),
            "frechet_distance": frechet_distance(real_feats[r], syn_feats[s]) if r.sum() > 1 and s.sum() > 1 else None,
            "synthetic_accuracy": float(np.mean(syn_pred[s] == k)) if s.any() else None,
        }
    return out
