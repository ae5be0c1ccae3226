"""Sampling a trained generator and writing the synthetic cohort of a fold.

Outputs (the data contract in the project README):

* ``generator.pt``: generator weights + settings + classes (``weights_only``-loadable);
* ``synthetic.npz`` (uncompressed, for fast loading): ``volumes`` float32
  ``(M, S, S, S)`` in [-1, 1], ``labels`` int64 ``(M,)``, ``classes`` str array;
* ``synthetic/{class}_{i:03d}.nii.gz``: the same volumes with the template
  affine, so any NIfTI viewer shows them in MNI orientation;
* ``samples.png``: per class, three orthogonal mid-slices of a real volume next
  to a synthetic one.

Sampling is deterministic by seed and independent of the batch size: z is
drawn for all M volumes at once from a seeded generator, and the generator
runs in eval mode, with BatchNorm statistics re-estimated on prior samples
(:func:`recalibrate_batchnorm`), so a sample does not depend on which others
share its batch.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import brainaug
from brainaug.gan.checkpoint import atomic_torch_save, load_weights
from brainaug.gan.networks import Generator
from brainaug.gan.settings import GANSettings
from brainaug.io.atomic import atomic_output

__all__ = [
    "synthesize",
    "recalibrate_batchnorm",
    "save_synthetic",
    "load_synthetic",
    "save_generator",
    "load_generator",
]


@torch.no_grad()
def recalibrate_batchnorm(
    generator: Generator,
    n_classes: int,
    seed: int,
    n_batches: int = 32,
    batch_size: int = 4,
) -> Generator:
    """A copy of ``generator`` whose BatchNorm running statistics are re-estimated on prior samples.

    Why: during training the running statistics mix two populations, G(E(x))
    (codes far from N(0, I) early on) and G(z); in eval mode that mixture can
    saturate the output (an all-background volume), while train-mode sampling
    makes each sample depend on its batch mates. Re-estimating the statistics
    on batches of ``G(z, y)`` with ``z ~ N(0, I)`` and balanced labels (a
    cumulative average, ``momentum=None``) gives eval-mode samples that look
    like train-mode ones and stay deterministic per seed.

    Args:
        generator: trained generator (not modified).
        n_classes: number of diagnoses.
        seed: seeds the calibration z and labels.
        n_batches: calibration batches.
        batch_size: volumes per calibration batch (the training batch size
            matches the statistics the weights were trained with).

    Returns:
        The calibrated copy, in eval mode.
    """
    calibrated = copy.deepcopy(generator)
    device = next(calibrated.parameters()).device
    norms = [m for m in calibrated.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None
    calibrated.train()
    rng = torch.Generator(device="cpu")
    rng.manual_seed(int(seed) + 1_000_003)
    for _ in range(n_batches):
        z = torch.randn(batch_size, calibrated.latent_dim, generator=rng)
        y = torch.randint(0, n_classes, (batch_size,), generator=rng)
        calibrated(z.to(device), y.to(device))
    for module in norms:
        module.momentum = 0.1
    return calibrated.eval()


@torch.no_grad()
def synthesize(
    generator: Generator,
    classes: list[str],
    n_per_class: int,
    seed: int,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    recalibrate: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_per_class`` volumes of every class from ``generator``.

    Args:
        generator: a trained :class:`Generator` (its train/eval mode is restored afterwards).
        classes: class names; label ``k`` is ``classes[k]``.
        n_per_class: volumes per class (>= 0).
        seed: seeds z; the same seed gives the same volumes.
        batch_size: volumes per forward pass (memory only; results do not depend on it).
        device: where to run; default the generator's device.
        recalibrate: re-estimate BatchNorm statistics on prior samples first
            (:func:`recalibrate_batchnorm`, seeded by ``seed``); without it the
            training-time running statistics are used as they are.

    Returns:
        ``volumes`` float32 ``(M, S, S, S)`` in [-1, 1] and ``labels`` int64
        ``(M,)`` with ``M = n_per_class * len(classes)``, grouped by class.

    Raises:
        ValueError: for a negative count, a non-positive batch size, or a class
            list that does not match the generator.
    """
    if n_per_class < 0:
        raise ValueError(f"n_per_class: expected a non-negative integer, got {n_per_class}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    if len(classes) != generator.n_classes:
        raise ValueError(
            f"classes: the generator was trained for {generator.n_classes} classes, got {len(classes)}: {classes}"
        )
    if device is None:
        device = next(generator.parameters()).device
    device = torch.device(device)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), n_per_class)
    s = generator.image_size
    rng = torch.Generator(device="cpu")
    rng.manual_seed(int(seed))
    z = torch.randn(len(labels), generator.latent_dim, generator=rng)
    out = np.empty((len(labels), s, s, s), dtype=np.float32)
    was_training = generator.training
    model = recalibrate_batchnorm(generator.to(device), len(classes), seed) if recalibrate else generator.to(device)
    model.eval()
    try:
        for start in range(0, len(labels), batch_size):
            stop = min(start + batch_size, len(labels))
            y = torch.from_numpy(labels[start:stop]).to(device)
            x = model(z[start:stop].to(device), y)
            out[start:stop] = x[:, 0].float().cpu().numpy()
    finally:
        generator.train(was_training)
    return out, labels


def save_synthetic(
    outdir: str | os.PathLike,
    volumes: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    affine: np.ndarray,
) -> dict[str, Any]:
    """Write ``synthetic.npz`` and ``synthetic/{class}_{i:03d}.nii.gz`` under ``outdir``.

    Args:
        outdir: the fold's GAN folder (``results/gan/repeat{r}/fold{k}``).
        volumes: float32 ``(M, S, S, S)`` in [-1, 1].
        labels: int ``(M,)`` indices into ``classes``.
        classes: class names (file names use them, so they must be file-name safe).
        affine: 4x4 voxel-to-world (RAS) affine of the template grid.

    Returns:
        ``{"npz": path, "nifti": [paths...]}``.

    Raises:
        ValueError: for mismatched shapes, labels outside ``classes``, or a bad affine.
    """
    import nibabel as nib

    volumes = np.asarray(volumes)
    labels = np.asarray(labels)
    if volumes.ndim != 4 or len(set(volumes.shape[1:])) != 1:
        raise ValueError(f"volumes: expected shape (M, S, S, S), got {volumes.shape}")
    if labels.shape != (volumes.shape[0],):
        raise ValueError(f"labels: expected shape ({volumes.shape[0]},), got {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(f"labels: expected values in [0, {len(classes) - 1}], got [{labels.min()}, {labels.max()}]")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ValueError(f"affine: expected a finite 4x4 matrix, got shape {affine.shape}")
    for name in classes:
        if not name or any(ch in str(name) for ch in "/\\\0") or str(name).startswith("."):
            raise ValueError(f"classes: {name!r} cannot be used in a file name")
    outdir = Path(outdir)
    nifti_dir = outdir / "synthetic"
    nifti_dir.mkdir(parents=True, exist_ok=True)
    npz_path = outdir / "synthetic.npz"
    with atomic_output(npz_path) as tmp:
        np.savez(
            tmp,
            volumes=volumes.astype(np.float32, copy=False),
            labels=labels.astype(np.int64, copy=False),
            classes=np.asarray([str(c) for c in classes]),
        )
    paths = []
    counters = {k: 0 for k in range(len(classes))}
    for volume, label in zip(volumes, labels):
        label = int(label)
        path = nifti_dir / f"{classes[label]}_{counters[label]:03d}.nii.gz"
        counters[label] += 1
        image = nib.Nifti1Image(volume.astype(np.float32, copy=False), affine)
        image.header.set_xyzt_units("mm")
        image.set_qform(affine, code=4)  # 4 = MNI152
        image.set_sform(affine, code=4)
        nib.save(image, path)
        paths.append(path)
    return {"npz": npz_path, "nifti": paths}


def load_synthetic(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``synthetic.npz``: ``(volumes (M, S, S, S) float32, labels (M,) int64, classes)``.

    ``mmap_mode`` is used so large arrays are not read until touched.

    Raises:
        FileNotFoundError: when ``path`` is missing.
        ValueError: when an expected array is absent.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"synthetic volumes not found: {path}")
    with np.load(path, mmap_mode="r", allow_pickle=False) as data:
        missing = {"volumes", "labels", "classes"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)}")
        return np.asarray(data["volumes"]), np.asarray(data["labels"]), [str(c) for c in data["classes"]]


def save_generator(
    path: str | os.PathLike, generator: Generator, settings: GANSettings, classes: list[str]
) -> Path:
    """Write the generator's weights with its settings and classes (atomic, ``weights_only``-loadable)."""
    state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    return atomic_torch_save(
        {
            "generator": state,
            "settings": settings.to_dict(),
            "classes": [str(c) for c in classes],
            "version": brainaug.__version__,
        },
        path,
    )


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[Generator, GANSettings, list[str]]:
    """Rebuild a generator saved by :func:`save_generator` (or take it from a training checkpoint).

    Returns:
        ``(generator in eval mode, settings, classes)``.

    Raises:
        FileNotFoundError: when ``path`` is missing.
        ValueError: when the file holds no generator.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator file not found: {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        raise ValueError(f"generator file {path} could not be read: {err}") from err
    if isinstance(state, dict) and "models" in state:  # a training checkpoint
        weights = state["models"].get("generator")
    else:
        weights = state.get("generator") if isinstance(state, dict) else None
    if weights is None or "settings" not in state or "classes" not in state:
        raise ValueError(f"{path}: expected a brainaug generator (keys generator/settings/classes)")
    settings = GANSettings.from_dict(state["settings"])
    classes = [str(c) for c in state["classes"]]
    generator = Generator(
        settings.image_size, settings.width, settings.latent_dim, len(classes),
        output_base=settings.output_base,
    )
    load_weights(generator, weights, path, "generator")
    return generator.to(device).eval(), settings, classes
