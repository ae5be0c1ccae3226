"""Fréchet distance between two sets of feature vectors (the FID formula).

Heusel et al. 2017 ("GANs trained by a two time-scale update rule converge to a
local Nash equilibrium", Eq. 6): fit a Gaussian to each feature set and compute

    d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}).

In brainaug the features come from a classifier trained on real scans of the
fold (there is no ImageNet Inception for 3D brains), so the number says how far
the synthetic volumes are from the real ones *in the classifier's eyes*.

Why not ``monai.metrics.FIDMetric``: it implements the same formula, but with
fewer volumes than features (the usual case here: tens of scans, hundreds of
features) the covariances are singular, ``scipy.linalg.sqrtm(S_a @ S_b)`` of a
non-symmetric singular product returns complex residues, and MONAI then raises
(imaginary part > 1e-3) or prints to stdout. We instead (1) add a small ridge
``eps * I`` (scaled to the mean feature variance) to both covariances and
(2) use the identity ``Tr((S_a S_b)^{1/2}) = Tr((S_a^{1/2} S_b S_a^{1/2})^{1/2})``,
whose inner matrix is symmetric positive semi-definite, so its square root comes
from ``eigh`` with negative round-off eigenvalues clipped to 0: always real. On
well-conditioned inputs the result equals MONAI's (tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["frechet_distance", "gaussian_frechet_distance"]


def _as_features(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, F) (one feature vector per volume), got {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 feature vectors to estimate a covariance, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    w, v = np.linalg.eigh((m + m.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def gaussian_frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu_a, cov_a) and N(mu_b, cov_b).

    Args:
        mu_a, mu_b: (F,) means.
        cov_a, cov_b: (F, F) symmetric positive semi-definite covariances.

    Returns:
        The distance (>= 0, clipped at 0 against round-off).
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    f = mu_a.shape[0]
    if mu_b.shape != (f,) or cov_a.shape != (f, f) or cov_b.shape != (f, f):
        raise ValueError(
            f"Expected means (F,) and covariances (F, F) with one F; got {mu_a.shape}, {cov_a.shape}, "
            f"{mu_b.shape}, {cov_b.shape}"
        )
    root_a = _sqrtm_psd(cov_a)
    tr_covmean = float(np.trace(_sqrtm_psd(root_a @ cov_b @ root_a)))
    diff = mu_a - mu_b
    d = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_covmean)
    return max(d, 0.0)


def frechet_distance(feats_a: Any, feats_b: Any, eps: float = 1e-6) -> float:
    """Fréchet distance between two feature sets (FID formula; see the module docstring).

    Args:
        feats_a: (N, F) features, e.g. of synthetic volumes; N >= 2.
        feats_b: (M, F) features, e.g. of real volumes; M >= 2. Symmetric in a and b.
        eps: ridge added to both covariances, relative to their mean diagonal
            (``eps * mean_var * I``), which keeps small-N estimates well-posed. It
            shifts the result by about ``eps`` times the feature variance: negligible.

    Returns:
        The distance as a float (0 for identical sets, up to round-off).

    Raises:
        ValueError: bad shapes, fewer than 2 rows, different feature sizes, non-finite values, eps < 0.
    """
    a = _as_features(feats_a, "feats_a")
    b = _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_a has {a.shape[1]} features per row but feats_b has {b.shape[1]}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    scale = float(np.mean(np.concatenate([np.diag(cov_a), np.diag(cov_b)])))
    ridge = eps * (scale if scale > 0 else 1.0) * np.eye(a.shape[1])
    return gaussian_frechet_distance(a.mean(0), cov_a + ridge, b.mean(0), cov_b + ridge)
