"""Quality of a fold's synthetic volumes: realism (MMD), diversity (MS-SSIM) and memorization.

A GAN can look good on slices and still be useless for augmentation: it can produce
an average brain over and over (mode collapse), or hand back near-copies of its
training scans (memorization, which would also leak the training subjects into
the synthetic set). Each number here targets one of these failure modes and is
computed per diagnosis class and over all classes:

- ``mmd``: MONAI's :class:`~monai.metrics.MMDMetric` (Gretton et al. 2012, Eq. 3,
  linear kernel on raw voxels) between equally sized random batches of real
  training and synthetic volumes, averaged over repeats and divided by the number
  of voxels. With a linear kernel the unbiased MMD estimates
  ``||mean(real) - mean(synthetic)||^2``, so the reported value is the mean squared
  voxel difference between the real and the synthetic *mean images*: about 0 when
  the GAN gets the average anatomy right (it can be slightly negative, being
  unbiased), larger when intensities or shapes are systematically off. It says
  nothing about diversity; that is what MS-SSIM is for.
- ``ms_ssim_synthetic`` / ``ms_ssim_real``: mean MS-SSIM (Wang et al. 2003, MONAI's
  :class:`~monai.metrics.MultiScaleSSIMMetric`, ``data_range=2`` for [-1, 1]) over
  random pairs of different volumes *within* each set. Lower means more diverse;
  a synthetic value well above the real one points at mode collapse.
- memorization: for each synthetic volume the RMS voxel distance to its nearest
  real training volume, and the same for each held-out real volume (validation and
  test scans of the fold, which the GAN never saw). ``memorization_ratio =
  median_nn_synthetic / median_nn_heldout``: about 1 when synthetic volumes are
  as far from the training set as new real scans, well below 1 when the GAN copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from brainaug.settings import build_settings

__all__ = [
    "QualitySettings",
    "gan_quality",
    "ms_ssim_params",
    "mmd_score",
    "ms_ssim_diversity",
    "nearest_neighbour_distances",
]

#: MONAI's (and Wang et al.'s) default per-scale weights; truncated and renormalised for small images.
_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@dataclass(frozen=True)
class QualitySettings:
    """Sampling and kernel settings of :func:`gan_quality` (config: ``gan.quality``).

    Args:
        max_pairs: MS-SSIM pairs evaluated per set (all pairs when fewer exist).
        mmd_repeats: random batch pairs averaged for the MMD.
        mmd_batch_size: volumes per MMD batch.
        ms_ssim_kernel_size: MS-SSIM Gaussian window size in voxels.
        ms_ssim_kernel_sigma: MS-SSIM Gaussian window sigma in voxels.
    """

    max_pairs: int
    mmd_repeats: int
    mmd_batch_size: int
    ms_ssim_kernel_size: int
    ms_ssim_kernel_sigma: float

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> QualitySettings:
        """Build from the ``gan.quality`` config section, defaults and bounds from the schema."""
        return build_settings(cls, "gan.quality", section)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`gan_quality`."""
        return asdict(self)


def ms_ssim_params(
    shape: int | Sequence[int], kernel_size: int = 3, kernel_sigma: float = 1.0, max_scales: int = 5
) -> dict[str, Any]:
    """Choose MS-SSIM parameters that MONAI accepts for a given image size.

    MONAI's defaults (kernel 11, 5 scales) reject 64^3: ``compute_ms_ssim`` requires
    ``size // (n_scales - 1)**2 > kernel_size - 1`` in every dimension, and the
    coarsest scale (``size / 2**(n_scales - 1)``) must still hold one kernel. We keep
    a small kernel and use as many scales as fit (5 at 64^3, 4 at 32^3, 3 at 16^3),
    with the standard weights truncated to those scales and renormalised to sum 1,
    so that values stay comparable in range across image sizes.

    Args:
        shape: spatial size, an int for cubes or a sequence ``(D, H, W)``.
        kernel_size: Gaussian window size in voxels (odd, >= 3 recommended).
        kernel_sigma: Gaussian window standard deviation in voxels.
        max_scales: upper bound on the number of scales (1..5).

    Returns:
        ``{"kernel_size", "kernel_sigma", "weights", "n_scales"}``, ready to unpack
        into :class:`~monai.metrics.MultiScaleSSIMMetric` (except ``n_scales``).

    Raises:
        ValueError: if the image is smaller than one kernel, or arguments are out of range.
    """
    sizes = [int(shape)] * 3 if isinstance(shape, (int, np.integer)) else [int(s) for s in shape]
    if kernel_size < 1:
        raise ValueError(f"ms_ssim kernel_size must be >= 1, got {kernel_size}")
    if kernel_sigma <= 0:
        raise ValueError(f"ms_ssim kernel_sigma must be > 0, got {kernel_sigma}")
    if not 1 <= max_scales <= len(_MS_SSIM_WEIGHTS):
        raise ValueError(f"ms_ssim max_scales must be in 1..{len(_MS_SSIM_WEIGHTS)}, got {max_scales}")
    smallest = min(sizes)
    for n in range(max_scales, 0, -1):
        div = max(1, n - 1) ** 2
        if smallest // div > kernel_size - 1 and smallest // 2 ** (n - 1) >= kernel_size:
            w = np.asarray(_MS_SSIM_WEIGHTS[:n], dtype=float)
            w = w / w.sum()
            return {
                "kernel_size": int(kernel_size),
                "kernel_sigma": float(kernel_sigma),
                "weights": [float(x) for x in w],
                "n_scales": n,
            }
    raise ValueError(f"Image size {tuple(sizes)} is too small for an MS-SSIM kernel of size {kernel_size}")


def _as_volumes(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as an (N, D, H, W) array (a memmap stays a memmap); accept (N, 1, D, H, W)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor of shape (N, D, H, W), got {type(x).__name__}")
    if x.ndim == 5 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (N, D, H, W) or (N, 1, D, H, W), got {tuple(x.shape)}")
    return x


def _as_labels(y: Any, n: int, n_classes: int, name: str) -> np.ndarray:
    y = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must be a 1D array with one label per volume ({n}), got shape {y.shape}")
    if len(y) and not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integer labels, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes - 1}] (one per class), got range [{y.min()}, {y.max()}]")
    return y.astype(np.int64)


def _batch(x: np.ndarray, idx: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Gather volumes ``idx`` as a (B, 1, D, H, W) tensor."""
    return torch.as_tensor(np.asarray(x[np.sort(idx)] if len(idx) else x[:0]), dtype=dtype).unsqueeze(1)


def mmd_score(
    real: np.ndarray,
    synthetic: np.ndarray,
    rng: np.random.Generator,
    n_repeats: int = 8,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> float | None:
    """Per-voxel linear-kernel MMD between real and synthetic volumes (see module docstring).

    MONAI's ``MMDMetric`` needs two batches of identical shape, so each repeat draws
    ``b = min(len(real), len(synthetic), batch_size)`` volumes from each set without
    replacement; the result is the mean over repeats divided by ``D*H*W``.

    Args:
        real: (N, D, H, W) real volumes.
        synthetic: (M, D, H, W) synthetic volumes.
        rng: random generator for the batch draws.
        n_repeats: number of random batch pairs (1 is used when both sets fit in one batch).
        batch_size: largest batch drawn from each set.
        device: torch device for the computation.

    Returns:
        The per-voxel MMD, or ``None`` when either set has fewer than 2 volumes.
    """
    b = min(len(real), len(synthetic), batch_size)
    if b < 2:
        return None
    repeats = 1 if b == len(real) == len(synthetic) else n_repeats
    from monai.metrics import MMDMetric  # imported here: 0.6 s that every classifier job would pay

    metric = MMDMetric()
    n_vox = int(np.prod(real.shape[1:]))
    vals = []
    for _ in range(repeats):
        y = _batch(real, rng.choice(len(real), b, replace=False), torch.float64).to(device)
        y_pred = _batch(synthetic, rng.choice(len(synthetic), b, replace=False), torch.float64).to(device)
        vals.append(float(metric(y, y_pred)) / n_vox)
    return float(np.mean(vals))


def _random_pairs(n: int, max_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct unordered index pairs (i < j): all of them if few, else ``max_pairs`` sampled."""
    n_all = n * (n - 1) // 2
    if n_all <= max_pairs:
        i, j = np.triu_indices(n, k=1)
        return np.stack([i, j], axis=1)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < max_pairs:
        i, j = rng.choice(n, 2, replace=False)
        pairs.add((int(min(i, j)), int(max(i, j))))
    return np.array(sorted(pairs))


def ms_ssim_diversity(
    volumes: np.ndarray,
    rng: np.random.Generator,
    max_pairs: int = 256,
    params: dict[str, Any] | None = None,
    chunk: int = 8,
    device: str | torch.device = "cpu",
) -> float | None:
    """Mean MS-SSIM over random pairs of different volumes within one set (lower = more diverse).

    Args:
        volumes: (N, D, H, W) volumes in [-1, 1].
        rng: random generator for the pair draw.
        max_pairs: largest number of pairs evaluated (all pairs when fewer exist).
        params: output of :func:`ms_ssim_params`; chosen from the image size when ``None``.
        chunk: pairs per MONAI call (bounds memory at 64^3).
        device: torch device for the computation (a GPU makes 64^3 sets fast).

    Returns:
        Mean MS-SSIM, or ``None`` when the set has fewer than 2 volumes.
    """
    if len(volumes) < 2:
        return None
    p = dict(params) if params is not None else ms_ssim_params(volumes.shape[1:])
    p.pop("n_scales", None)
    from monai.metrics import MultiScaleSSIMMetric

    metric = MultiScaleSSIMMetric(spatial_dims=3, data_range=2.0, reduction="mean", **p)
    pairs = _random_pairs(len(volumes), max_pairs, rng)
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        a = torch.as_tensor(np.stack([np.asarray(volumes[i]) for i in part[:, 0]]), dtype=torch.float32)
        b = torch.as_tensor(np.stack([np.asarray(volumes[j]) for j in part[:, 1]]), dtype=torch.float32)
        metric(a.unsqueeze(1).to(device), b.unsqueeze(1).to(device))
    value = float(metric.aggregate())
    metric.reset()
    return value


def nearest_neighbour_distances(
    queries: np.ndarray,
    reference: np.ndarray,
    chunk: int = 64,
    exclude_identical_index: bool = False,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """RMS voxel distance from each query volume to its nearest reference volume.

    Computed as ``sqrt(min_j ||q - r_j||^2 / V)`` in float64 through
    ``||q||^2 + ||r||^2 - 2 q.r`` (BLAS matrix products, chunked so that 64^3 sets of
    hundreds of volumes fit in memory); an exact copy gives 0 up to rounding.

    Args:
        queries: (M, D, H, W) volumes.
        reference: (N, D, H, W) volumes, N >= 1.
        chunk: volumes per block on each side.
        exclude_identical_index: skip ``j == i`` (leave-one-out within one set).
        device: torch device for the products (float64).

    Returns:
        (M,) float64 array of distances in intensity units.
    """
    if len(reference) == 0:
        raise ValueError("nearest_neighbour_distances needs at least one reference volume, got 0")
    if queries.shape[1:] != reference.shape[1:]:
        raise ValueError(f"Query volumes {queries.shape[1:]} and reference volumes {reference.shape[1:]} differ in shape")
    n_vox = int(np.prod(reference.shape[1:]))
    best = np.full(len(queries), np.inf)
    for qs in range(0, len(queries), chunk):
        q = torch.as_tensor(np.asarray(queries[qs : qs + chunk]), dtype=torch.float64).reshape(-1, n_vox).to(device)
        qn = (q * q).sum(1, keepdim=True)
        for rs in range(0, len(reference), chunk):
            r = torch.as_tensor(np.asarray(reference[rs : rs + chunk]), dtype=torch.float64).reshape(-1, n_vox).to(device)
            d2 = (qn + (r * r).sum(1)[None, :] - 2.0 * q @ r.T).clamp_min_(0.0)
            if exclude_identical_index:
                qi = torch.arange(qs, qs + len(q), device=d2.device)[:, None]
                ri = torch.arange(rs, rs + len(r), device=d2.device)[None, :]
                d2 = d2.masked_fill(qi == ri, float("inf"))
            best[qs : qs + len(q)] = np.minimum(best[qs : qs + len(q)], d2.min(1).values.cpu().numpy())
    return np.sqrt(best / n_vox)


def _median(x: np.ndarray) -> float | None:
    return float(np.median(x)) if len(x) else None


def _group_quality(
    real: np.ndarray,
    synthetic: np.ndarray,
    nn_syn: np.ndarray,
    nn_held: np.ndarray,
    n_heldout: int,
    rng: np.random.Generator,
    max_pairs: int,
    mmd_repeats: int,
    mmd_batch_size: int,
    params: dict[str, Any],
    device: str | torch.device,
) -> dict[str, Any]:
    med_syn, med_held = _median(nn_syn), _median(nn_held)
    ratio = med_syn / med_held if med_syn is not None and med_held else None
    return {
        "n_real_train": int(len(real)),
        "n_synthetic": int(len(synthetic)),
        "n_heldout": int(n_heldout),
        "mmd": mmd_score(real, synthetic, rng, n_repeats=mmd_repeats, batch_size=mmd_batch_size, device=device),
        "ms_ssim_synthetic": ms_ssim_diversity(synthetic, rng, max_pairs=max_pairs, params=params, device=device),
        "ms_ssim_real": ms_ssim_diversity(real, rng, max_pairs=max_pairs, params=params, device=device),
        "median_nn_synthetic": med_syn,
        "median_nn_heldout": med_held,
        "memorization_ratio": ratio,
    }


def gan_quality(
    real_train: np.ndarray | torch.Tensor,
    real_train_labels: Sequence[int] | np.ndarray,
    synthetic: np.ndarray | torch.Tensor,
    synthetic_labels: Sequence[int] | np.ndarray,
    heldout_real: np.ndarray | torch.Tensor,
    heldout_labels: Sequence[int] | np.ndarray,
    classes: Sequence[str],
    seed: int = 0,
    max_pairs: int = 256,
    mmd_repeats: int = 8,
    mmd_batch_size: int = 32,
    ms_ssim_kernel_size: int = 3,
    ms_ssim_kernel_sigma: float = 1.0,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Realism, diversity and memorization of one fold's synthetic set, per class and overall.

    Args:
        real_train: (N, S, S, S) real volumes the GAN trained on (the fold's train subjects), in [-1, 1].
        real_train_labels: (N,) integer labels (index into ``classes``).
        synthetic: (M, S, S, S) generated volumes in [-1, 1].
        synthetic_labels: (M,) intended class of each synthetic volume.
        heldout_real: (K, S, S, S) real volumes the GAN never saw (the fold's val and test scans); K may be 0.
        heldout_labels: (K,) integer labels.
        classes: ordered class names.
        seed: seed for every random draw (pairs, MMD batches); same inputs and seed give the same result.
        max_pairs: MS-SSIM pairs per set (all pairs when fewer exist).
        mmd_repeats: random batch pairs averaged for the MMD.
        mmd_batch_size: volumes per MMD batch (``min(n_real, n_synthetic, mmd_batch_size)`` are drawn).
        ms_ssim_kernel_size: MS-SSIM Gaussian window size (see :func:`ms_ssim_params`).
        ms_ssim_kernel_sigma: MS-SSIM Gaussian window sigma in voxels.
        device: torch device for all computations ("cpu", "cuda"); the numbers do not depend on it
            beyond floating-point rounding.

    Returns:
        A JSON-serialisable dict: ``classes``, ``image_shape``, ``ms_ssim_params``, ``seed``,
        ``overall`` and ``per_class`` (class name -> the same keys as ``overall``): ``n_real_train``,
        ``n_synthetic``, ``n_heldout``, ``mmd``, ``ms_ssim_synthetic``, ``ms_ssim_real``,
        ``median_nn_synthetic``, ``median_nn_heldout``, ``memorization_ratio``. A value that cannot be
        computed (e.g. fewer than 2 volumes of a class) is ``None``. Nearest neighbours are searched
        among *all* real training volumes, whatever their class: a copy is a copy.

    Raises:
        ValueError / TypeError: for inconsistent shapes, labels or parameters.
    """
    classes = [str(c) for c in classes]
    if not classes:
        raise ValueError("classes must list at least one diagnosis, got an empty list")
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")
    if mmd_repeats < 1:
        raise ValueError(f"mmd_repeats must be >= 1, got {mmd_repeats}")
    if mmd_batch_size < 2:
        raise ValueError(f"mmd_batch_size must be >= 2, got {mmd_batch_size}")
    real = _as_volumes(real_train, "real_train")
    syn = _as_volumes(synthetic, "synthetic")
    held = _as_volumes(heldout_real, "heldout_real")
    if len(real) == 0:
        raise ValueError("real_train must hold at least one volume, got 0")
    shape = tuple(real.shape[1:])
    for name, arr in (("synthetic", syn), ("heldout_real", held)):
        if len(arr) and tuple(arr.shape[1:]) != shape:
            raise ValueError(f"{name} volumes have shape {tuple(arr.shape[1:])}, expected {shape} like real_train")
    y_real = _as_labels(real_train_labels, len(real), len(classes), "real_train_labels")
    y_syn = _as_labels(synthetic_labels, len(syn), len(classes), "synthetic_labels")
    y_held = _as_labels(heldout_labels, len(held), len(classes), "heldout_labels")
    params = ms_ssim_params(shape, kernel_size=ms_ssim_kernel_size, kernel_sigma=ms_ssim_kernel_sigma)

    nn_syn = nearest_neighbour_distances(syn, real, device=device) if len(syn) else np.zeros(0)
    nn_held = nearest_neighbour_distances(held, real, device=device) if len(held) else np.zeros(0)

    rng = np.random.default_rng(seed)
    overall = _group_quality(real, syn, nn_syn, nn_held, len(held), rng, max_pairs, mmd_repeats, mmd_batch_size, params, device)
    per_class = {}
    for k, name in enumerate(classes):
        r, s, h = y_real == k, y_syn == k, y_held == k
        per_class[name] = _group_quality(
            real[np.flatnonzero(r)],
            syn[np.flatnonzero(s)],
            nn_syn[s],
            nn_held[h],
            int(h.sum()),
            np.random.default_rng([seed, k + 1]),
            max_pairs,
            mmd_repeats,
            mmd_batch_size,
            params,
            device,
        )
    return {
        "classes": classes,
        "image_shape": [int(s) for s in shape],
        "seed": int(seed),
        "ms_ssim_params": params,
        "overall": overall,
        "per_class": per_class,
    }
