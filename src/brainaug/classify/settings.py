"""Typed classifier settings built from the config's ``classifier`` section.

The settings are saved inside every ``model.pt`` so the architecture can be rebuilt
from the checkpoint alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from brainaug.device import PRECISIONS

__all__ = ["MODELS", "ClassifierSettings"]

MODELS = ("conv5_fc3", "densenet121", "resnet18")


@dataclass(frozen=True)
class ClassifierSettings:
    """Classifier architecture and optimisation settings.

    Args:
        model: ``"conv5_fc3"`` (ClinicaDL-style small CNN), ``"densenet121"`` or
            ``"resnet18"`` (MONAI, 3D, 1 input channel).
        widths: Conv5FC3 channel widths of the five conv blocks.
        fc_hidden: Conv5FC3 hidden FC sizes; ``None`` scales ClinicaDL's (1300, 50) to
            the flattened feature size (see :func:`brainaug.classify.networks.default_fc_hidden`).
        dropout: dropout before the FC head.
        lr: Adam learning rate.
        weight_decay: Adam weight decay (L2, as in the study's Adam).
        batch_size: training and evaluation batch size.
        max_epochs: upper bound on epochs.
        patience: stop after this many epochs without a better validation balanced
            accuracy (ties broken by lower validation loss).
        min_epochs: never stop before this many epochs.
        seed: seeds weight init, batch order and augmentation.
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"`` (see :mod:`brainaug.device`;
            ``auto`` is bf16 autocast where the hardware has native bf16).
        num_workers: DataLoader workers (0: in-process; the volumes are memory-mapped).
        class_weighted_loss: weight the cross-entropy by inverse class frequency of the
            training set (helps the minority class; off to match the study).
        augment_max_shift: largest roll (voxels) of the classic augmentation. The study
            rolls 1-4 voxels at 64^3; at 32^3 the same physical shift is 1-2 voxels.
    """

    model: str = "conv5_fc3"
    widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    fc_hidden: tuple[int, int] | None = None
    dropout: float = 0.5
    lr: float = 1e-4
    weight_decay: float = 1e-4
    batch_size: int = 8
    max_epochs: int = 30
    patience: int = 8
    min_epochs: int = 1
    seed: int = 0
    precision: str = "fp32"
    num_workers: int = 0
    class_weighted_loss: bool = False
    augment_max_shift: int = 4

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"classifier.model must be one of {MODELS}, got {self.model!r}")
        widths = tuple(self.widths)
        if len(widths) != 5 or not all(isinstance(w, int) and w > 0 for w in widths):
            raise ValueError(
                f"classifier.widths must be 5 positive integers (one per conv block), got {self.widths!r}"
            )
        object.__setattr__(self, "widths", widths)
        if self.fc_hidden is not None:
            fc = tuple(self.fc_hidden)
            if len(fc) != 2 or not all(isinstance(h, int) and h > 0 for h in fc):
                raise ValueError(
                    f"classifier.fc_hidden must be 2 positive integers or null, got {self.fc_hidden!r}"
                )
            object.__setattr__(self, "fc_hidden", fc)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"classifier.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.lr > 0:
            raise ValueError(f"classifier.lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"classifier.weight_decay must be >= 0, got {self.weight_decay!r}")
        for name in ("batch_size", "max_epochs", "patience", "min_epochs", "augment_max_shift"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"classifier.{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"classifier.seed must be a non-negative integer, got {self.seed!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"classifier.precision must be one of {PRECISIONS}, got {self.precision!r}"
            )
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(
                f"classifier.num_workers must be a non-negative integer, got {self.num_workers!r}"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> ClassifierSettings:
        """Build from the ``classifier`` config section; missing keys take the defaults.

        Raises:
            ValueError: unknown key or bad value (the message names the key).
        """
        section = dict(section or {})
        known = {f.name for f in fields(cls)}
        unknown = set(section) - known
        if unknown:
            raise ValueError(
                f"Unknown key(s) in config section 'classifier': {sorted(unknown)}; "
                f"expected some of {sorted(known)}"
            )
        for key in ("widths", "fc_hidden"):
            if section.get(key) is not None:
                try:
                    section[key] = tuple(section[key])
                except TypeError as err:
                    raise ValueError(
                        f"classifier.{key} must be a list of integers, got {section[key]!r}"
                    ) from err
        return cls(**section)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tuples become lists), stored in checkpoints."""
        out = asdict(self)
        out["widths"] = list(self.widths)
        out["fc_hidden"] = list(self.fc_hidden) if self.fc_hidden is not None else None
        return out
