"""Networks of the 3D conditional alpha-GAN (Kwon et al. 2019, MICCAI; ``cyclomon/3dbraingen``).

Four networks, sized by ``image_size`` S, ``width`` w and ``latent_dim``:

* :class:`Encoder` E: Conv3d k4 s2 p1 trunk with ``n = log2(S) - 2`` stages of
  widths w, 2w, ..., w*2^(n-1) (no BatchNorm on the first stage, LeakyReLU 0.2),
  ending at 4^3; a Conv3d k4 maps it to the latent code. Unconditional.
* :class:`Generator` G: the one-hot diagnosis is concatenated to z;
  ConvTranspose3d to (w*2^(n-1), 4, 4, 4), then n-1 blocks of [nearest upsample
  x2, Conv3d k3 no bias, BN, ReLU] halving the width down to w, a last upsample,
  Conv3d k3 to 1 channel and tanh.
* :class:`Discriminator` D: the same trunk as E, a Conv3d k4 critic head, plus
  a projection term ``<embed(y), mean_pool(h)>`` (Miyato & Koyama 2018) that
  conditions the critic on the diagnosis.
* :class:`CodeDiscriminator` CD: MLP latent -> 4096 -> 4096 -> 1 with BN1d and
  LeakyReLU 0.2. Unconditional.

The heads, the generator's stem and its upsample-convolve blocks compute
exactly the reference's layers, but faster (:mod:`brainaug.gan.layers`).

At S=64, w=64, latent 1000 the stage widths are 64-128-256-512 and the
parameter counts are the reference's (E 43.8M, G 37.4M, D 11.1M, CD 20.9M)
plus the conditioning (G: n_classes*512*64 input weights; D: an n_classes x 512
embedding). At S=32 the trunk has three stages (w, 2w, 4w), at S=16 two (w, 2w),
at S=128 five (w ... 16w).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import torch
import torch.nn.functional as F
from torch import nn

from brainaug.gan.layers import DenseConv3d, DenseConvTranspose3d, NearestUpsampleConv3d
from brainaug.gan.settings import GANSettings

__all__ = [
    "Encoder",
    "Generator",
    "Discriminator",
    "CodeDiscriminator",
    "AlphaGAN",
    "build_alpha_gan",
    "stage_widths",
    "code_hidden_units",
    "count_parameters",
]


#: Values of ``Generator(output_base=...)`` and ``gan.output_base``.
OUTPUT_BASES = ("none", "mean", "class_mean")


def stage_widths(image_size: int, width: int) -> list[int]:
    """Channel widths of the stride-2 trunk stages for an (S, S, S) input.

    ``log2(S) - 2`` stages so that the trunk ends at 4^3: S=64 gives
    ``[w, 2w, 4w, 8w]``.

    Raises:
        ValueError: when S is not a power of two >= 16 or width < 1.
    """
    if image_size < 16 or image_size & (image_size - 1):
        raise ValueError(f"image_size: expected a power of two >= 16, got {image_size}")
    if width < 1:
        raise ValueError(f"width: expected a positive integer, got {width}")
    n_stages = image_size.bit_length() - 1 - 2
    return [width * 2**k for k in range(n_stages)]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (BN running stats excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class _Trunk(nn.Module):
    """Conv3d k4 s2 p1 stages, BN on all but the first, LeakyReLU 0.2.

    Input ``(B, 1, S, S, S)``; output ``(B, widths[-1], 4, 4, 4)``.
    """

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 1
        for k, out_ch in enumerate(widths):
            layers.append(nn.Conv3d(in_ch, out_ch, kernel_size=4, stride=2, padding=1))
            if k > 0:
                layers.append(nn.BatchNorm3d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _check_volume(x: torch.Tensor, image_size: int, name: str) -> None:
    if x.dim() != 5 or x.shape[1] != 1 or tuple(x.shape[2:]) != (image_size,) * 3:
        raise ValueError(
            f"{name}: expected a tensor of shape (B, 1, {image_size}, {image_size}, {image_size}), "
            f"got {tuple(x.shape)}"
        )


class Encoder(nn.Module):
    """E: volume -> latent code (unconditional).

    Args:
        image_size: S of the input ``(B, 1, S, S, S)``.
        width: first-stage channels.
        latent_dim: size of the code.

    Forward: ``x (B, 1, S, S, S)`` -> ``z (B, latent_dim)``.
    """

    def __init__(self, image_size: int = 64, width: int = 64, latent_dim: int = 1000) -> None:
        super().__init__()
        widths = stage_widths(image_size, width)
        self.image_size = image_size
        self.trunk = _Trunk(widths)
        self.head = DenseConv3d(widths[-1], latent_dim, kernel_size=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_volume(x, self.image_size, "Encoder input")
        return self.head(self.trunk(x)).flatten(1)


class Discriminator(nn.Module):
    """D: WGAN critic conditioned on the diagnosis.

    ``D(x, y) = head(h) + <embed(y), mean_{spatial} h>`` with ``h = trunk(x)``
    (projection, Miyato & Koyama 2018). The embedding starts at zero, so an
    untrained D is the reference's unconditional critic; with Adam at lr 2e-4
    the class term stays a tiny share of the critic's output for hundreds of
    iterations, which is why it alone did not make the generator use y.

    With ``auxiliary=True`` the critic also has an auxiliary-classifier head
    (Odena et al. 2017; the AC-WGAN-GP of Gulrajani et al. 2017): a linear
    map of the whole ``(C, 4, 4, 4)`` trunk output to class logits. It sees
    *where* features are (ventricles, hippocampi), unlike the mean-pooled
    projection, and its cross-entropy gives the generator a class signal from
    the first iteration.

    Args:
        image_size: S of the input.
        width: first-stage channels.
        n_classes: number of diagnoses.
        auxiliary: add the auxiliary-classifier head.

    Forward: ``x (B, 1, S, S, S)``, ``y (B,)`` int64 labels -> ``(B,)`` critic values.
    """

    def __init__(self, image_size: int = 64, width: int = 64, n_classes: int = 3, auxiliary: bool = False) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes: expected a positive integer, got {n_classes}")
        widths = stage_widths(image_size, width)
        self.image_size = image_size
        self.n_classes = n_classes
        self.trunk = _Trunk(widths)
        self.head = DenseConv3d(widths[-1], 1, kernel_size=4)
        self.embed = nn.Embedding(n_classes, widths[-1])
        nn.init.zeros_(self.embed.weight)
        self.classifier = nn.Linear(widths[-1] * 4**3, n_classes) if auxiliary else None

    def scores(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Critic values ``(B,)`` and auxiliary class logits ``(B, n_classes)`` (None without the head)."""
        _check_volume(x, self.image_size, "Discriminator input")
        h = self.trunk(x)
        out = self.head(h).flatten(1).sum(1)
        projection = (self.embed(y) * h.mean(dim=(2, 3, 4))).sum(1)
        if self.classifier is None:
            return out + projection, None
        with torch.autocast(x.device.type, enabled=False):
            logits = self.classifier(h.flatten(1).to(self.classifier.weight.dtype))
        return out + projection, logits

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.scores(x, y)[0]


class Generator(nn.Module):
    """G: (code, diagnosis) -> volume in [-1, 1].

    With an output base the last layer is ``tanh(h + atanh(base[y]))``: the
    network starts from fixed base volumes and learns deviations from them,
    its last convolution initialised at zero. ``output_base="mean"`` has one
    base, the mean of the fold's training volumes; ``"class_mean"`` has one per
    diagnosis, the mean of that class's training volumes, so every sample
    starts from its class's average anatomy (label fidelity by construction)
    and the network learns how subjects vary around it. Either way a short
    laptop schedule spends itself on anatomy variation rather than on drawing
    a head from noise. The bases are a buffer, saved with the weights; they
    are averages of the fold's training volumes only (set by
    :meth:`set_output_base`).

    Args:
        image_size: S of the output.
        width: channels of the last block (the first has ``width * 2**(n-1)``).
        latent_dim: size of z.
        n_classes: number of diagnoses (one-hot concatenated to z).
        output_base: ``"none"``, ``"mean"`` or ``"class_mean"`` (see above).

    Forward: ``z (B, latent_dim)``, ``y (B,)`` int64 -> ``(B, 1, S, S, S)``.
    """

    def __init__(
        self, image_size: int = 64, width: int = 64, latent_dim: int = 1000, n_classes: int = 3,
        output_base: str = "none",
    ) -> None:
        super().__init__()
        widths = stage_widths(image_size, width)[::-1]  # e.g. 512, 256, 128, 64
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.n_classes = n_classes
        self.stem = nn.Sequential(
            DenseConvTranspose3d(latent_dim + n_classes, widths[0], kernel_size=4),
            nn.BatchNorm3d(widths[0]),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        for in_ch, out_ch in zip(widths[:-1], widths[1:]):
            blocks += [NearestUpsampleConv3d(in_ch, out_ch), nn.BatchNorm3d(out_ch), nn.ReLU(inplace=True)]
        blocks += [NearestUpsampleConv3d(widths[-1], 1)]
        self.blocks = nn.Sequential(*blocks)
        if output_base not in OUTPUT_BASES:
            raise ValueError(f"output_base: expected one of {OUTPUT_BASES}, got {output_base!r}")
        self.output_base = output_base
        if output_base != "none":
            nn.init.zeros_(self.blocks[-1].weight)
            n_bases = n_classes if output_base == "class_mean" else 1
            self.register_buffer("base_logit", torch.zeros(n_bases, 1, image_size, image_size, image_size))

    @torch.no_grad()
    def set_output_base(self, volumes: np.ndarray, labels: np.ndarray) -> None:
        """Set the base(s) from training volumes ``(N, S, S, S)`` in [-1, 1] and their labels.

        Means are clipped to +-0.999 so that atanh is finite.

        Raises:
            ValueError: without an output base, for a wrong shape, or when a class has no volume.
        """
        if self.output_base == "none":
            raise ValueError("Generator: built with output_base 'none', cannot set a base volume")
        volumes = np.asarray(volumes)
        labels = np.asarray(labels)
        if volumes.shape[1:] != (self.image_size,) * 3:
            raise ValueError(f"Generator base: expected volumes of shape {(self.image_size,) * 3}, got {volumes.shape[1:]}")
        groups = [labels == k for k in range(self.n_classes)] if self.output_base == "class_mean" else [labels == labels]
        for k, members in enumerate(groups):
            if not members.any():
                raise ValueError(f"Generator base: class {k} has no training volume to average")
            mean = torch.from_numpy(np.mean(volumes[members], axis=0, dtype=np.float64).astype(np.float32))
            self.base_logit[k, 0] = torch.atanh(mean.clamp(-0.999, 0.999))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Generator z: expected shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        if y.shape != (z.shape[0],):
            raise ValueError(f"Generator y: expected shape ({z.shape[0]},), got {tuple(y.shape)}")
        onehot = F.one_hot(y.long(), self.n_classes).to(z.dtype)
        h = torch.cat([z, onehot], dim=1)[:, :, None, None, None]
        h = self.blocks(self.stem(h))
        if self.output_base == "class_mean":
            h = h.to(self.base_logit.dtype) + self.base_logit[y.long()]
        elif self.output_base == "mean":
            h = h.to(self.base_logit.dtype) + self.base_logit
        return torch.tanh(h)


class CodeDiscriminator(nn.Module):
    """CD: critic on latent codes, telling E(x) from z ~ N(0, I).

    With ``n_classes > 0`` the diagnosis is concatenated to the code, so CD
    asks each class's codes to look like N(0, I). Then a code cannot carry the
    diagnosis, and the L1 reconstruction can only be met by a generator that
    reads y. The reference's CD is unconditional (``n_classes = 0``).

    Args:
        latent_dim: size of the code.
        hidden: units of the two hidden layers (4096 in the reference).
        n_classes: diagnoses seen by the critic (0: unconditional).

    Forward: ``z (B, latent_dim)``, ``y (B,)`` int64 (ignored when ``n_classes`` is 0) -> ``(B,)``.
    """

    def __init__(self, latent_dim: int = 1000, hidden: int = 4096, n_classes: int = 0) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.layers = nn.Sequential(
            nn.Linear(latent_dim + n_classes, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # fp32 even under autocast: at batch 4 the MLP is bound by reading its
        # 4096x4096 weights, and casting them to bf16 on every call cost more.
        with torch.autocast(z.device.type, enabled=False):
            z = z.to(self.layers[0].weight.dtype)
            if self.n_classes:
                if y is None:
                    raise ValueError("CodeDiscriminator: conditioned on the diagnosis, called without labels")
                z = torch.cat([z, F.one_hot(y.long(), self.n_classes).to(z.dtype)], dim=1)
            return self.layers(z).flatten()


@dataclass
class AlphaGAN:
    """The four networks trained together."""

    encoder: Encoder
    generator: Generator
    discriminator: Discriminator
    code_discriminator: CodeDiscriminator

    def modules(self) -> dict[str, nn.Module]:
        """Name -> network, in a fixed order (used for checkpoints)."""
        return {
            "encoder": self.encoder,
            "generator": self.generator,
            "discriminator": self.discriminator,
            "code_discriminator": self.code_discriminator,
        }

    def to(self, device: torch.device) -> AlphaGAN:
        for module in self.modules().values():
            module.to(device)
        return self


def code_hidden_units(latent_dim: int) -> int:
    """Hidden units of the code discriminator: 4096 at the reference's latent 1000, scaled down with it.

    The next power of two >= ``4 * latent_dim``, clamped to [256, 4096]
    (latent 1000 -> 4096, latent 128 -> 512); keeps the laptop-sized MLP from
    dwarfing the rest of the model.
    """
    units = 1 << max(0, (4 * latent_dim - 1).bit_length())
    return int(min(4096, max(256, units)))


def build_alpha_gan(settings: GANSettings, n_classes: int, hidden: int | None = None) -> AlphaGAN:
    """Build E, G, D and CD for ``settings`` and ``n_classes`` diagnoses (weights seeded by ``settings.seed``).

    Args:
        settings: sizes come from ``image_size``, ``width``, ``latent_dim``.
        n_classes: number of diagnoses (>= 1).
        hidden: code-discriminator hidden units; default :func:`code_hidden_units`.
    """
    if n_classes < 1:
        raise ValueError(f"n_classes: expected a positive integer, got {n_classes}")
    hidden = code_hidden_units(settings.latent_dim) if hidden is None else hidden
    s, w, z = settings.image_size, settings.width, settings.latent_dim
    auxiliary = settings.conditioning == "auxiliary"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        return AlphaGAN(
            encoder=Encoder(s, w, z),
            generator=Generator(s, w, z, n_classes, output_base=settings.output_base),
            discriminator=Discriminator(s, w, n_classes, auxiliary=auxiliary),
            code_discriminator=CodeDiscriminator(z, hidden, n_classes if auxiliary else 0),
        )
