"""Device and precision helpers shared by the GAN and the classifier.

Why one module: the GAN and the classifier must make the same choices
(which device, which autocast dtype, which memory layout, which Adam kernel)
so that a config's ``precision`` means the same thing in both, and so that
the benchmark times exactly what training runs.

* ``precision="auto"`` resolves to bf16 autocast on CUDA and on CPUs that have
  native bf16 instructions (AVX512-BF16 / AMX); there the benchmark
  (``benchmarks/gan_step.py``) showed bf16 + channels_last_3d to be the
  fastest setting without diverging. Elsewhere it resolves to fp32.
* bf16 needs no gradient scaler (same exponent range as fp32), so training
  code never carries one.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

__all__ = [
    "PRECISIONS",
    "pick_device",
    "resolve_precision",
    "autocast",
    "to_channels_last",
    "configure_backends",
    "set_threads",
    "cpu_has_bf16",
    "num_threads",
    "adam",
]

#: Accepted values of the ``precision`` config key.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to train on.

    Args:
        device: ``None`` or ``"auto"`` picks CUDA when available, else CPU;
            anything else is passed to :class:`torch.device` (e.g. ``"cpu"``,
            ``"cuda:1"``).

    Raises:
        ValueError: when CUDA is asked for but not available, or the string
            is not a device name.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was requested but CUDA is not available")
    return dev


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX).

    Without them PyTorch emulates bf16 on CPU, which is slower than fp32.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Map the ``precision`` config value to an autocast dtype.

    Args:
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"``.
        device: the training device.

    Returns:
        ``torch.bfloat16`` for bf16 autocast, ``None`` for plain fp32.

    Raises:
        ValueError: for an unknown precision string.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast context for ``dtype`` on ``device``; a no-op when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_channels_last(obj: nn.Module | torch.Tensor) -> nn.Module | torch.Tensor:
    """Put a module's 5D weights, or a 5D tensor ``(B, C, D, H, W)``, in channels_last_3d.

    Other tensors (2D, 1D) are returned unchanged, so it is safe on whole
    models that mix Conv3d and Linear layers.
    """
    if isinstance(obj, nn.Module):
        return obj.to(memory_format=torch.channels_last_3d)
    if obj.dim() == 5:
        return obj.contiguous(memory_format=torch.channels_last_3d)
    return obj


def configure_backends(device: torch.device, deterministic: bool = False) -> None:
    """Turn on the fast paths for ``device``: TF32 matmuls/convs and cudnn autotuning on CUDA.

    Args:
        device: the training device; nothing happens on CPU.
        deterministic: keep cudnn deterministic (no benchmark autotuning,
            which picks algorithms by timing and so can change results).
    """
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


def set_threads(n: int | None) -> int:
    """Set the number of intra-op CPU threads and return the number in effect.

    Args:
        n: threads to use; ``None`` or 0 uses ``os.cpu_count()`` (a Snakemake
            rule passes its ``threads``).

    Raises:
        ValueError: when ``n`` is negative.
    """
    if n is not None and n < 0:
        raise ValueError(f"threads: expected a non-negative integer, got {n}")
    if not n:
        n = os.cpu_count() or 1
    torch.set_num_threads(int(n))
    return torch.get_num_threads()


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Temporarily run with ``n`` intra-op threads (restored afterwards)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def adam(params: Iterable[torch.Tensor], fused: bool = True, **kwargs: Any) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the fused kernel where this torch has one for the parameters' device.

    Why: PyTorch's default Adam on CPU loops over the parameters with several
    passes each; the fused kernel makes one. For the study-size alpha-GAN
    (113M parameters) that took the four optimizer steps from 0.4-1.0 s to
    about 0.1 s per iteration on 2 cores. The update rule is the same (up to
    rounding). ``fused=False`` gives PyTorch's default implementation.
    """
    params = list(params)
    if fused:
        try:
            return torch.optim.Adam(params, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):  # no fused Adam for this device/dtype in this torch
            pass
    return torch.optim.Adam(params, **kwargs)
