"""Atomic, resumable checkpoints of alpha-GAN training.

A checkpoint holds everything needed to continue bit-for-bit: the four
networks and their optimizers, the step, the RNG states (torch, CUDA, numpy,
python and the batch sampler's generator), the settings (the architecture on
resume comes from here), the class names, the loss history and the brainaug
version. It contains only tensors and plain Python containers, so it loads with
``torch.load(weights_only=True)``: no pickled code runs when a checkpoint is
read.

It is written to a temporary file in the same folder and then renamed over
the old one with :func:`os.replace` (atomic on POSIX), so a job killed while
saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainaug.io.atomic import atomic_output

__all__ = [
    "CHECKPOINT_NAME",
    "atomic_torch_save",
    "save_checkpoint",
    "load_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
    "load_weights",
]

#: File name of the (single, latest) checkpoint inside a training workdir.
CHECKPOINT_NAME = "checkpoint.pt"


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temp file next to ``path``, fsync, then ``os.replace`` it into place.

    Args:
        obj: what to save (tensors and plain containers).
        path: destination; its parent folder is created if needed.

    Returns:
        The destination path.
    """
    path = Path(path)
    with atomic_output(path, suffix=".tmp", fsync=True) as tmp:
        torch.save(obj, tmp)
    return path


def capture_rng_state(sampler: torch.Generator | None = None) -> dict[str, Any]:
    """RNG states as tensors and lists (``weights_only``-loadable).

    Args:
        sampler: the training loop's own generator (batches, z, GP weights).
    """
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if sampler is not None:
        state["sampler"] = sampler.get_state()
    return state


def restore_rng_state(state: dict[str, Any], sampler: torch.Generator | None = None) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if sampler is not None and "sampler" in state:
        sampler.set_state(state["sampler"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write a training checkpoint atomically (see module docstring for the fields).

    Args:
        path: destination file.
        state: dict with at least ``step``, ``settings``, ``models`` and ``optimizers``.

    Raises:
        ValueError: when a required field is missing.
    """
    missing = [key for key in ("step", "settings", "models", "optimizers") if key not in state]
    if missing:
        raise ValueError(f"checkpoint {path}: missing fields {missing}")
    return atomic_torch_save(state, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is not a readable brainaug GAN checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GAN checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt/unsafe files
        raise ValueError(f"GAN checkpoint {path} could not be read: {err}") from err
    if not isinstance(state, dict) or not {"step", "settings", "models", "optimizers"} <= set(state):
        raise ValueError(f"GAN checkpoint {path}: expected a dict with step/settings/models/optimizers")
    return state


def load_weights(module: torch.nn.Module, weights: dict[str, Any], source: str | os.PathLike, name: str) -> None:
    """``module.load_state_dict(weights)`` with an error that names the file and says what to do.

    Why: a checkpoint written by a brainaug whose networks differ (another
    version, or a hand-edited config) otherwise fails with a list of
    mismatched tensor names that does not say which file is at fault.

    Raises:
        ValueError: when the weights do not fit ``module``.
    """
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:
        detail = " ".join(line.strip() for line in str(err).strip().splitlines()[:2])
        raise ValueError(
            f"{source}: the saved {name} does not fit this brainaug's networks "
            f"(written by another version or for other sizes): {detail[:300]}; "
            "delete the file to train afresh"
        ) from err
