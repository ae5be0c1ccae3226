"""Typed settings of the conditional alpha-GAN, built from the config's ``gan`` section.

The dataclass is saved (as a plain dict) inside every checkpoint and every
``generator.pt``; on resume the architecture comes from there, not from the
current config, so a changed config cannot silently mismatch the weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from brainaug.device import PRECISIONS

__all__ = ["GANSettings", "CONDITIONINGS", "VALID_IMAGE_SIZES"]

#: Accepted values of ``conditioning`` (how the discriminator sees the label).
CONDITIONINGS: tuple[str, ...] = ("projection",)

#: Image sizes the networks support: powers of two from 16 (trunks end at 4^3).
VALID_IMAGE_SIZES: tuple[int, ...] = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class GANSettings:
    """Hyper-parameters of one alpha-GAN training run.

    Attributes:
        image_size: S of the (S, S, S) volumes; a power of two >= 16.
        width: channels of the first encoder/discriminator stage (64 in Kwon
            et al. 2019); stage k has ``width * 2**k`` channels.
        latent_dim: size of the code z (1000 in the reference).
        batch_size: volumes per iteration (4 in the reference).
        iterations: total training iterations (one E/G, one D, one CD step each).
        lr: Adam learning rate of all four networks.
        betas: Adam betas (PyTorch defaults, as the reference used).
        lambda_gp: weight of every WGAN-GP gradient penalty.
        lambda_l1: weight of the L1 reconstruction term.
        checkpoint_every: iterations between checkpoints (the last iteration
            is always checkpointed).
        n_synthetic_per_class: synthetic volumes written per diagnosis.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (see ``brainaug.device``).
        channels_last: use the channels_last_3d memory layout for 5D tensors.
        conditioning: how the discriminator is conditioned on the diagnosis.
        seed: seeds weights, batch sampling, z and the GP mixing weights.
        log_every: iterations between progress-bar loss updates.
    """

    image_size: int = 32
    width: int = 16
    latent_dim: int = 128
    batch_size: int = 4
    iterations: int = 300
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    lambda_gp: float = 10.0
    lambda_l1: float = 10.0
    checkpoint_every: int = 100
    n_synthetic_per_class: int = 20
    precision: str = "auto"
    channels_last: bool = True
    conditioning: str = "projection"
    seed: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.image_size not in VALID_IMAGE_SIZES:
            raise ValueError(
                f"gan.image_size: expected a power of two in {VALID_IMAGE_SIZES}, got {self.image_size}"
            )
        for name in ("width", "latent_dim", "batch_size", "iterations", "checkpoint_every",
                     "n_synthetic_per_class", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"gan.{name}: expected an integer, got {type(value).__name__} {value!r}")
            minimum = 0 if name == "n_synthetic_per_class" else 1
            if value < minimum:
                raise ValueError(f"gan.{name}: expected an integer >= {minimum}, got {value}")
        if self.batch_size < 2:
            raise ValueError(f"gan.batch_size: BatchNorm needs at least 2 volumes per batch, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"gan.lr: expected a positive number, got {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"gan.betas: expected two numbers in [0, 1), got {self.betas!r}")
        for name in ("lambda_gp", "lambda_l1"):
            if getattr(self, name) < 0:
                raise ValueError(f"gan.{name}: expected a non-negative number, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"gan.precision: expected one of {PRECISIONS}, got {self.precision!r}")
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"gan.conditioning: expected one of {CONDITIONINGS}, got {self.conditioning!r}")

    @property
    def n_stages(self) -> int:
        """Stride-2 stages of the encoder/discriminator trunk: log2(S) - 2, so it ends at 4^3."""
        return self.image_size.bit_length() - 1 - 2

    @classmethod
    def from_config(cls, section: dict[str, Any] | None) -> GANSettings:
        """Build settings from the config's ``gan`` section; missing keys take the defaults.

        Unknown keys are rejected (a typo would otherwise be ignored silently).

        Raises:
            TypeError: when ``section`` is not a dict.
            ValueError: for unknown keys or out-of-range values.
        """
        if section is None:
            section = {}
        if not isinstance(section, dict):
            raise TypeError(f"gan config section: expected a mapping, got {type(section).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"gan config section: unknown keys {unknown}; known keys are {sorted(known)}")
        kwargs = dict(section)
        if "betas" in kwargs:
            kwargs["betas"] = tuple(float(b) for b in kwargs["betas"])
        for name in ("lr", "lambda_gp", "lambda_l1"):
            if name in kwargs and isinstance(kwargs[name], int) and not isinstance(kwargs[name], bool):
                kwargs[name] = float(kwargs[name])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, numbers, strings) that ``torch.load(weights_only=True)`` accepts."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GANSettings:
        """Inverse of :meth:`to_dict` (used when loading checkpoints)."""
        return cls.from_config(data)

    def replace(self, **changes: Any) -> GANSettings:
        """Copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
