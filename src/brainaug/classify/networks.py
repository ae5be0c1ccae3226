"""3D CNN classifiers: a ClinicaDL-style Conv5_FC3 sized for S^3, or MONAI nets.

Conv5_FC3 (Wen et al. 2020, ClinicaDL ``Conv5_FC3``): five blocks of
[Conv3d k3 p1, BatchNorm, ReLU, MaxPool 2] with widths 8-16-32-64-128, then
flatten, dropout, FC 1300, ReLU, FC 50, ReLU, FC n_classes. ClinicaDL's head was
sized for 169x208x179 inputs (flattened 128*6*7*6); here the pools use
``ceil_mode`` (ClinicaDL's PadMaxPool) and a pool is skipped once a spatial
dimension has reached 1, so S in {16, 32, 64} (and any S >= 1) works: S=64 ends
at 2^3, S=32 at 1^3, S=16 at 1^3 (the fifth pool skipped). The hidden FC sizes
default to ClinicaDL's (1300, 50) capped by the flattened size, so a small input
does not get a 1300-wide layer (S=32: 128 -> 128 -> 50 -> n_classes).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from brainaug.classify.ordinal import CumulativeLink
from brainaug.classify.settings import ClassifierSettings
from brainaug.device import to_channels_last

__all__ = ["CenteredInput", "Conv5FC3", "build_classifier", "default_fc_hidden", "penultimate_features"]


def default_fc_hidden(n_flat: int) -> tuple[int, int]:
    """ClinicaDL's hidden sizes (1300, 50), scaled down for small flattened inputs.

    Args:
        n_flat: number of flattened conv features.

    Returns:
        ``(min(1300, max(64, n_flat)), 50)``.
    """
    h1 = min(1300, max(64, int(n_flat)))
    return h1, min(50, h1)


class Conv5FC3(nn.Module):
    """ClinicaDL-style 3D CNN for ``(B, C, S, S, S)`` volumes.

    Args:
        in_channels: input channels (1 for T1w).
        n_classes: number of outputs: the diagnoses, or 1 for the score of an ordinal head
            (:class:`brainaug.classify.ordinal.CumulativeLink`).
        image_size: S, the cubic input side; fixes the flattened size.
        widths: channels of the five conv blocks.
        dropout: dropout probability before the FC head.
        fc_hidden: hidden FC sizes; ``None`` -> :func:`default_fc_hidden`.
        pooling: ``"flatten"`` keeps ClinicaDL's head (flatten, dropout, FC, FC, FC);
            ``"average"`` averages each channel over space, then dropout and one FC layer
            (fewer parameters to fit from a few dozen subjects).
        pooled_blocks: how many blocks, from the first, end with the 2x max pool
            (ClinicaDL: all 5). With 3 at 32^3 the last two blocks work on a 4^3 map
            and the average head averages it: the embedded cohort's classifier then
            left chance at epoch 2-6 instead of 6-14 (benchmarks/README.md).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 3,
        image_size: int = 32,
        widths: tuple[int, ...] = (8, 16, 32, 64, 128),
        dropout: float = 0.5,
        fc_hidden: tuple[int, int] | None = None,
        pooling: str = "flatten",
        pooled_blocks: int = 5,
    ) -> None:
        super().__init__()
        if pooling not in ("flatten", "average"):
            raise ValueError(f"pooling must be 'flatten' or 'average', got {pooling!r}")
        if len(widths) != 5:
            raise ValueError(f"Conv5FC3 needs 5 widths (one per conv block), got {tuple(widths)}")
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        if not 0 <= pooled_blocks <= len(widths):
            raise ValueError(f"pooled_blocks must lie in [0, {len(widths)}], got {pooled_blocks}")
        self.image_size = int(image_size)
        self.n_classes = int(n_classes)
        blocks: list[nn.Module] = []
        size, channels = self.image_size, in_channels
        for block, width in enumerate(widths):
            layers: list[nn.Module] = [
                nn.Conv3d(channels, width, kernel_size=3, padding=1),
                nn.BatchNorm3d(width),
                nn.ReLU(inplace=True),
            ]
            if size > 1 and block < pooled_blocks:  # nothing left to pool at 1 voxel
                layers.append(nn.MaxPool3d(2, stride=2, ceil_mode=True))
                size = math.ceil(size / 2)
            blocks.append(nn.Sequential(*layers))
            channels = width
        self.convolutions = nn.Sequential(*blocks)
        self.out_spatial = size
        if pooling == "average":
            self.embedding = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Dropout(dropout))
            self.head = nn.Linear(channels, n_classes)
            self.n_features = channels
            return
        n_flat = channels * size**3
        h1, h2 = fc_hidden if fc_hidden is not None else default_fc_hidden(n_flat)
        self.embedding = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(n_flat, h1),
            nn.ReLU(inplace=True),
            nn.Linear(h1, h2),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(h2, n_classes)
        self.n_features = h2

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 5 or tuple(x.shape[2:]) != (self.image_size,) * 3:
            raise ValueError(
                f"Conv5FC3 expects input (B, C, {self.image_size}, {self.image_size}, "
                f"{self.image_size}), got {tuple(x.shape)}"
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(B, n_features)`` (input of the last FC)."""
        self._check(x)
        return self.embedding(self.convolutions(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, n_classes)`` for ``x`` of shape ``(B, C, S, S, S)``."""
        return self.head(self.features(x))


class CenteredInput(nn.Module):
    """Subtracts a fixed reference volume from the input of the wrapped classifier.

    Why: every preprocessed brain shares the template's anatomy, and the
    diagnosis lives in small deviations from it (larger ventricles, a smaller
    hippocampus). Fed raw volumes, the embedded cohort's classifier sat at
    chance for 10-20 epochs before it found them; fed each volume minus the
    mean of the fold's real training volumes, it left chance within 3-4
    (``benchmarks/README.md``). The reference is fitted on real training
    volumes only and saved with the weights, so validation, test and synthetic
    volumes are centred the same way.

    Args:
        net: the classifier.
        image_size: S of the ``(B, 1, S, S, S)`` input.
    """

    def __init__(self, net: nn.Module, image_size: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("reference", torch.zeros(1, 1, image_size, image_size, image_size))

    def fit(self, volumes: torch.Tensor) -> None:
        """Set the reference to the voxel-wise mean of ``volumes`` ``(N, S, S, S)``."""
        self.reference.copy_(volumes.mean(dim=0).reshape(self.reference.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x - self.reference)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of the wrapped classifier for centred ``x``."""
        return penultimate_features(self.net, x - self.reference)


def build_classifier(settings: ClassifierSettings, n_classes: int, image_size: int) -> nn.Module:
    """Instantiate the classifier named by ``settings.model``, centred if ``settings.input_centering`` says so.

    The reference of a :class:`CenteredInput` starts at zero: the caller fits it
    (training) or loads it with the weights (``model.pt``). With
    ``settings.channels_last`` the 5D weights are laid out channels-last, so every
    convolution runs oneDNN's (CPU) or cuDNN's (CUDA) faster kernels; a
    single-channel input needs no conversion to follow. With ``settings.head``
    ``ordinal`` the network gives one score and :class:`CumulativeLink` turns it
    into ordered class probabilities.
    """
    if settings.head == "ordinal":
        net: nn.Module = CumulativeLink(_build_network(settings, 1, image_size), n_classes)
    else:
        net = _build_network(settings, n_classes, image_size)
    if settings.input_centering == "train_mean":
        net = CenteredInput(net, image_size)
    if settings.channels_last:
        net = to_channels_last(net)
    return net


def _build_network(settings: ClassifierSettings, n_classes: int, image_size: int) -> nn.Module:
    """Instantiate the classifier named by ``settings.model``.

    Args:
        settings: classifier settings (model, widths, dropout, fc_hidden).
        n_classes: number of outputs.
        image_size: S of the ``(B, 1, S, S, S)`` input.

    Returns:
        A module mapping ``(B, 1, S, S, S)`` to ``(B, n_classes)`` outputs, freshly
        initialised from torch's current RNG state (seed it for reproducibility).
    """
    if settings.model == "conv5_fc3":
        return Conv5FC3(
            in_channels=1,
            n_classes=n_classes,
            image_size=image_size,
            widths=settings.widths,
            dropout=settings.dropout,
            fc_hidden=settings.fc_hidden,
            pooling=settings.pooling,
            pooled_blocks=settings.pooled_blocks,
        )
    # MONAI is imported only for its networks: the import takes 1.7 s, paid by every conv5_fc3 job.
    if settings.model == "densenet121":
        from monai.networks.nets import DenseNet121

        if image_size < 32:  # four stride-2 stages after a stride-2 stem: needs 32 voxels
            raise ValueError(
                f"classifier.model 'densenet121' needs image_size >= 32, got {image_size}; "
                "use 'conv5_fc3' or 'resnet18' for smaller volumes"
            )
        return DenseNet121(
            spatial_dims=3, in_channels=1, out_channels=n_classes, dropout_prob=settings.dropout
        )
    if settings.model == "resnet18":
        from monai.networks.nets import resnet18

        return resnet18(spatial_dims=3, n_input_channels=1, num_classes=n_classes)
    raise ValueError(f"Unknown classifier model {settings.model!r}")


def _last_linear(model: nn.Module) -> nn.Linear:
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None:
        raise TypeError(f"{type(model).__name__} has no nn.Linear output layer")
    return last


@torch.no_grad()
def penultimate_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Penultimate-layer features ``(B, F)`` of any classifier built here.

    Used for a Fréchet distance between real and synthetic volumes. Uses
    ``model.features`` when it exists as a method (Conv5FC3); otherwise captures the
    input of the model's last ``nn.Linear`` (MONAI DenseNet/ResNet heads). The model
    is put in eval mode for the call and restored afterwards.

    Args:
        model: a classifier from :func:`build_classifier`.
        x: input ``(B, 1, S, S, S)``.
    """
    was_training = model.training
    model.eval()
    try:
        if isinstance(model, (Conv5FC3, CenteredInput)):
            return model.features(x)
        if isinstance(model, CumulativeLink):
            return penultimate_features(model.net, x)
        captured: list[torch.Tensor] = []
        handle = _last_linear(model).register_forward_pre_hook(
            lambda _m, inputs: captured.append(inputs[0].detach())
        )
        try:
            model(x)
        finally:
            handle.remove()
        return captured[-1].flatten(1)
    finally:
        model.train(was_training)
