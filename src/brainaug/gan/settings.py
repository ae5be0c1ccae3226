"""Typed settings of the conditional alpha-GAN, built from the config's ``gan`` section.

The dataclass is saved (as a plain dict) inside every checkpoint and every
``generator.pt``; on resume the architecture comes from there, not from the
current config, so a changed config cannot silently mismatch the weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from brainaug.settings import build_settings

__all__ = ["GANSettings"]

#: What a generator saved before these settings existed was built with.
_BEFORE_THE_KEY_EXISTED = {"conditioning": "projection", "output_base": "none"}


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
        betas: Adam betas; (0.5, 0.9) by default, the reference used PyTorch's (0.9, 0.999).
        lambda_gp: weight of every WGAN-GP gradient penalty.
        lambda_l1: weight of the L1 reconstruction term.
        lambda_class: weight of the auxiliary-classifier cross-entropies
            (``conditioning: auxiliary`` only).
        checkpoint_every: iterations between checkpoints (the last iteration
            is always checkpointed).
        n_synthetic_per_class: synthetic volumes written per diagnosis.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (see ``brainaug.device``).
        channels_last: use the channels_last_3d memory layout for 5D tensors.
        conditioning: ``projection`` (a projection term in D only) or
            ``auxiliary`` (plus an auxiliary-classifier head on D and a
            class-conditional code critic).
        output_base: ``none``, ``mean`` or ``class_mean``: the generator
            learns deviations from the mean of its training volumes (of each
            class), see :class:`brainaug.gan.networks.Generator`.
        memorization_threshold: synthetic volumes nearer to a training
            volume than this times the validation volumes' median distance are
            rejected (:mod:`brainaug.gan.memorization`); 0 turns the gate off.
        seed: seeds weights, batch sampling, z and the GP mixing weights.
        log_every: iterations between progress-bar loss updates.
        monitor_every: iterations between sample-quality evaluations
            (:mod:`brainaug.gan.monitor`).
    """

    image_size: int
    width: int
    latent_dim: int
    batch_size: int
    iterations: int
    lr: float
    betas: tuple[float, float]
    lambda_gp: float
    lambda_l1: float
    lambda_class: float
    checkpoint_every: int
    n_synthetic_per_class: int
    precision: str
    channels_last: bool
    conditioning: str
    output_base: str
    memorization_threshold: float
    seed: int
    log_every: int
    monitor_every: int

    @property
    def n_stages(self) -> int:
        """Stride-2 stages of the encoder/discriminator trunk: log2(S) - 2, so it ends at 4^3."""
        return self.image_size.bit_length() - 1 - 2

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> GANSettings:
        """Build settings from the config's ``gan`` section, defaults and bounds from the schema.

        ``image_size`` is ``preprocess.image_size``: callers add it to the section.

        Raises:
            TypeError: when ``section`` is not a mapping or a value has the wrong type.
            ValueError: for unknown keys or out-of-range values.
        """
        return build_settings(cls, "gan", section, borrowed={"image_size": "preprocess.image_size"})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, numbers, strings) that ``torch.load(weights_only=True)`` accepts."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GANSettings:
        """Inverse of :meth:`to_dict` (used when loading checkpoints).

        A checkpoint written before a key existed was trained the way brainaug
        worked then, not with today's default: those keys take their old value.
        """
        return cls.from_config({**_BEFORE_THE_KEY_EXISTED, **data})

    def replace(self, **changes: Any) -> GANSettings:
        """Copy with some fields changed (not validated again: change only what a checkpoint fixes)."""
        return dataclasses.replace(self, **changes)
