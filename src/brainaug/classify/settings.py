"""Typed classifier settings built from the config's ``classifier`` section.

The settings are saved inside every ``model.pt`` so the architecture can be rebuilt
from the checkpoint alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from brainaug.settings import build_settings

__all__ = ["ClassifierSettings"]

#: Keys of old checkpoints' settings that are no longer settings.
_RETIRED = ("num_workers",)


@dataclass(frozen=True)
class ClassifierSettings:
    """Classifier architecture and optimisation settings.

    Args:
        model: ``"conv5_fc3"`` (ClinicaDL-style small CNN), ``"densenet121"`` or
            ``"resnet18"`` (MONAI, 3D, 1 input channel).
        widths: Conv5FC3 channel widths of the five conv blocks.
        fc_hidden: Conv5FC3 hidden FC sizes; ``None`` scales ClinicaDL's (1300, 50) to
            the flattened feature size (see :func:`brainaug.classify.networks.default_fc_hidden`).
        pooling: Conv5FC3 head, ``"flatten"`` (ClinicaDL) or ``"average"`` (global average
            pooling and one FC layer).
        pooled_blocks: how many Conv5FC3 blocks end with a 2x max pool (ClinicaDL: 5).
        input_centering: ``"train_mean"`` subtracts the mean real training volume from every
            input (see :class:`brainaug.classify.networks.CenteredInput`), ``"none"`` does not.
        dropout: dropout before the FC head.
        lr: Adam learning rate.
        weight_decay: Adam weight decay (L2, as in the study's Adam).
        batch_size: training and evaluation batch size.
        max_epochs: upper bound on epochs.
        patience: stop after this many epochs without a better validation score (``selection``).
        min_epochs: never stop before this many epochs.
        seed: seeds weight init, batch order and augmentation.
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"`` (see :mod:`brainaug.device`;
            ``auto`` is bf16 autocast where the hardware has native bf16).
        channels_last: keep 5D weights in the channels_last_3d layout (the input then
            follows); faster on CPU (oneDNN) and CUDA, the same network.
        class_weighted_loss: weight the cross-entropy by inverse class frequency of the
            training set (helps the minority class; off to match the study).
        bn_statistics: ``"real_train"`` (BatchNorm statistics re-estimated on the real,
            un-augmented training volumes before validation and test) or ``"running"``.
        augment_max_shift_mm: largest shift (mm) of the classic augmentation's rolls; each
            axis rolls by whole voxels, 1..max(1, round(this / voxel size)) (see
            :func:`brainaug.classify.augment.max_roll_voxels`). 10.5 mm is the study's 1-4
            voxels at 64^3 and 1-2 voxels at 32^3.
        augment_rotation: ``"fourier"`` (three Fourier-shift shears: keeps sharpness, so no
            train/test shift) or ``"bilinear"`` (blurs the rotated training volumes).
        augment_steps: ``"both"`` (the study), ``"roll"`` or ``"rotate"`` (the ablation).
        selection: the validation score that picks the tested epoch and drives early
            stopping: ``"balanced_accuracy"`` (the study; ties: lower loss) or ``"loss"``
            (ties: higher balanced accuracy); see :mod:`brainaug.classify.loop`.
        selection_from_train_accuracy: epochs count for ``selection`` and early stopping
            only from the first one whose training accuracy reaches this (0: all epochs).
        head: ``"softmax"`` (one logit per class, the study) or ``"ordinal"`` (one score and
            learned cut points, for classes listed in order; see :mod:`brainaug.classify.ordinal`).
    """

    model: str
    widths: tuple[int, ...]
    fc_hidden: tuple[int, int] | None
    pooling: str
    pooled_blocks: int
    input_centering: str
    dropout: float
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    min_epochs: int
    seed: int
    precision: str
    channels_last: bool
    class_weighted_loss: bool
    bn_statistics: str
    augment_max_shift_mm: float
    augment_rotation: str
    augment_steps: str
    selection: str
    selection_from_train_accuracy: float
    head: str

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> ClassifierSettings:
        """Build from the ``classifier`` config section, defaults and bounds from the schema.

        ``model.pt`` files written before ``num_workers`` was retired still hold it; it is dropped.

        Raises:
            TypeError: a value of the wrong type (the message names the key).
            ValueError: unknown key or bad value (the message names the key).
        """
        if isinstance(section, Mapping):
            section = {k: v for k, v in section.items() if k not in _RETIRED}
        return build_settings(cls, "classifier", section)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tuples become lists), stored in checkpoints."""
        out = asdict(self)
        out["widths"] = list(self.widths)
        out["fc_hidden"] = list(self.fc_hidden) if self.fc_hidden is not None else None
        return out
