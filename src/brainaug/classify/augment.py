"""Classic augmentation exactly as the study describes it.

With probability 0.95 translate: each spatial axis independently with probability
0.66 is rolled (``torch.roll``, voxels wrap around) by 1-4 voxels in either
direction. With probability 0.9 rotate in the axial plane by an angle drawn
uniformly from [-6, 6] degrees (bilinear interpolation, outside filled with the
background value -1). Translation is applied before rotation, in the order the
study lists them.

Axis convention: volumes are ``(D, H, W)`` arrays (optionally with a leading
channel axis and batch axis) whose array axes are the NIfTI voxel axes
``(x, y, z)`` of a RAS-oriented image as loaded by nibabel (``img.get_fdata()``
and the volumes in ``results/preprocessed`` / ``results/dataset``). The axial
plane is therefore the plane of the first two spatial axes (x-y) and the
rotation is about the third (z). A positive angle moves content from +x towards
-y in array-index coordinates (MONAI ``Rotate`` convention); the angle
distribution is symmetric, so the sign only matters for replay.

Design (as in TorchIO): :class:`RandomStudyAugmentation` samples its parameters
from a random generator and records them as a :class:`StudyAugmentationParams`;
:func:`apply_study_augmentation` is the deterministic twin, so recorded
parameters replay to the same output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from monai.data import MetaTensor
from monai.networks.layers import AffineTransform
from monai.transforms import Rotate
from monai.transforms.utils import create_rotate

__all__ = [
    "RandomStudyAugmentation",
    "StudyAugmentationParams",
    "apply_study_augmentation",
    "roll_volume",
    "rotate_axial",
    "rotate_axial_batch",
]


@dataclass(frozen=True)
class StudyAugmentationParams:
    """Recorded parameters of one draw of the study's augmentation.

    Args:
        translate: whether the translate step happened (p 0.95).
        shifts: per spatial axis (x, y, z) integer roll in voxels; 0 means the axis was
            not shifted (each axis is shifted with p 0.66 when ``translate``).
        rotate: whether the rotate step happened (p 0.9).
        angle_deg: axial rotation angle in degrees (0.0 when not ``rotate``).
    """

    translate: bool = False
    shifts: tuple[int, int, int] = (0, 0, 0)
    rotate: bool = False
    angle_deg: float = 0.0

    def to_dict(self) -> dict:
        """Plain dict, e.g. for logging."""
        return asdict(self)


def _spatial_dims(volume: torch.Tensor) -> tuple[int, int, int]:
    if not isinstance(volume, torch.Tensor):
        raise TypeError(f"Expected a torch.Tensor volume, got {type(volume).__name__}")
    if volume.ndim < 3:
        raise ValueError(
            f"Expected a volume of shape (D, H, W) or (C, D, H, W), got shape {tuple(volume.shape)}"
        )
    n = volume.ndim
    return (n - 3, n - 2, n - 1)


def roll_volume(volume: torch.Tensor, shifts: tuple[int, int, int]) -> torch.Tensor:
    """Translate by rolling (wrap-around) along the last three (x, y, z) axes.

    Args:
        volume: tensor ``(..., D, H, W)``.
        shifts: integer shift per spatial axis (x, y, z); 0 leaves an axis alone.

    Returns:
        Tensor of the same shape; the multiset of voxel values is unchanged.
    """
    dims = _spatial_dims(volume)
    if len(shifts) != 3:
        raise ValueError(f"Expected 3 shifts (x, y, z), got {shifts!r}")
    active = [(int(s), d) for s, d in zip(shifts, dims) if int(s) != 0]
    if not active:
        return volume
    return torch.roll(volume, shifts=[s for s, _ in active], dims=[d for _, d in active])


def rotate_axial(volume: torch.Tensor, angle_deg: float, background: float = -1.0) -> torch.Tensor:
    """Rotate in the axial (x-y) plane about the image centre with MONAI ``Rotate``.

    Bilinear interpolation; voxels that come from outside the field of view take
    ``background`` (implemented exactly by shifting intensities so the background is
    0, rotating with zero padding, and shifting back).

    Args:
        volume: tensor ``(D, H, W)`` or ``(C, D, H, W)``, axes (x, y, z).
        angle_deg: rotation angle in degrees.
        background: fill value for voxels rotated in from outside.

    Returns:
        Float tensor of the same shape and dtype.
    """
    _spatial_dims(volume)
    if volume.ndim not in (3, 4):
        raise ValueError(
            f"rotate_axial expects (D, H, W) or (C, D, H, W), got shape {tuple(volume.shape)}"
        )
    if angle_deg == 0.0:
        return volume
    squeeze = volume.ndim == 3
    x = volume.unsqueeze(0) if squeeze else volume
    dtype = x.dtype
    rot = Rotate(
        angle=(0.0, 0.0, math.radians(float(angle_deg))),
        keep_size=True,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
        dtype=torch.float32,
    )
    out = rot(x.float() - background)
    if isinstance(out, MetaTensor):  # plain tensors downstream (no metadata tracking)
        out = out.as_tensor()
    out = out.to(dtype) + background
    return out.squeeze(0) if squeeze else out


def rotate_axial_batch(
    batch: torch.Tensor, angles_deg: Sequence[float], background: float = -1.0
) -> torch.Tensor:
    """Batched :func:`rotate_axial`: one resampling call for the whole batch.

    Same matrices as MONAI ``Rotate`` (``create_rotate``, rotation about the image
    centre) applied with MONAI's ``AffineTransform`` layer, which is several times
    faster than a ``Rotate`` per volume on CPU; results agree with
    :func:`rotate_axial` to float precision.

    Args:
        batch: tensor ``(B, C, D, H, W)``, spatial axes (x, y, z).
        angles_deg: B angles in degrees.
        background: fill value for voxels rotated in from outside.
    """
    if batch.ndim != 5 or len(angles_deg) != batch.shape[0]:
        raise ValueError(
            f"rotate_axial_batch expects (B, C, D, H, W) and B angles, got shape "
            f"{tuple(batch.shape)} and {len(angles_deg)} angles"
        )
    theta = torch.stack(
        [
            torch.as_tensor(create_rotate(3, (0.0, 0.0, math.radians(float(a)))), dtype=torch.float32)
            for a in angles_deg
        ]
    ).to(batch.device)
    resample = AffineTransform(
        normalized=False, mode="bilinear", padding_mode="zeros", align_corners=False, zero_centered=True
    )
    out = resample(batch.float() - background, theta)
    return out.to(batch.dtype) + background


def apply_study_augmentation(
    volume: torch.Tensor, params: StudyAugmentationParams, background: float = -1.0
) -> torch.Tensor:
    """Deterministic twin of :class:`RandomStudyAugmentation`: roll, then rotate.

    Args:
        volume: tensor ``(D, H, W)`` or ``(C, D, H, W)``, axes (x, y, z).
        params: recorded parameters.
        background: fill value for rotation.
    """
    out = volume
    if params.translate:
        out = roll_volume(out, params.shifts)
    if params.rotate:
        out = rotate_axial(out, params.angle_deg, background=background)
    return out


def _as_numpy_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


@dataclass
class RandomStudyAugmentation:
    """Random translate (roll) + axial rotation with the study's probabilities.

    Args:
        p_translate: probability of the translate step.
        p_axis: probability that each axis is shifted within the translate step.
        min_shift, max_shift: shift magnitude range in voxels (inclusive); the sign is
            drawn uniformly.
        p_rotate: probability of the rotate step.
        max_angle_deg: angle drawn uniformly from [-max_angle_deg, max_angle_deg].
        background: fill value for voxels rotated in from outside.

    ``last_params`` holds the parameters of the most recent call, for replay.
    """

    p_translate: float = 0.95
    p_axis: float = 0.66
    min_shift: int = 1
    max_shift: int = 4
    p_rotate: float = 0.9
    max_angle_deg: float = 6.0
    background: float = -1.0
    last_params: StudyAugmentationParams | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("p_translate", "p_axis", "p_rotate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if not 1 <= self.min_shift <= self.max_shift:
            raise ValueError(
                f"Expected 1 <= min_shift <= max_shift, got min_shift={self.min_shift}, "
                f"max_shift={self.max_shift}"
            )
        if self.max_angle_deg < 0:
            raise ValueError(f"max_angle_deg must be >= 0, got {self.max_angle_deg!r}")

    def sample_params(self, rng: np.random.Generator | int | None = None) -> StudyAugmentationParams:
        """Draw one set of parameters (cheap; no image work).

        Args:
            rng: numpy Generator (advanced in place), an int seed, or None (fresh entropy).
        """
        g = _as_numpy_rng(rng)
        # Always consume the same number of draws so a sequence stays aligned.
        u_translate, u_rotate = g.random(2)
        u_axes = g.random(3)
        magnitudes = g.integers(self.min_shift, self.max_shift + 1, size=3)
        signs = g.choice(np.array([-1, 1]), size=3)
        angle = g.uniform(-self.max_angle_deg, self.max_angle_deg)
        translate = bool(u_translate < self.p_translate)
        shifts = tuple(
            int(m * s) if (translate and u < self.p_axis) else 0
            for m, s, u in zip(magnitudes, signs, u_axes)
        )
        rotate = bool(u_rotate < self.p_rotate)
        return StudyAugmentationParams(
            translate=translate,
            shifts=shifts,  # type: ignore[arg-type]
            rotate=rotate,
            angle_deg=float(angle) if rotate else 0.0,
        )

    def __call__(
        self, volume: torch.Tensor, rng: np.random.Generator | int | None = None
    ) -> torch.Tensor:
        """Augment one volume ``(D, H, W)`` or ``(C, D, H, W)``; records ``last_params``."""
        params = self.sample_params(rng)
        self.last_params = params
        return apply_study_augmentation(volume, params, background=self.background)

    def augment_batch(
        self, batch: torch.Tensor, rng: np.random.Generator | int | None = None
    ) -> tuple[torch.Tensor, list[StudyAugmentationParams]]:
        """Augment each sample of a batch independently.

        Args:
            batch: tensor ``(B, C, D, H, W)``.
            rng: numpy Generator, int seed or None.

        Returns:
            ``(augmented batch (B, C, D, H, W), per-sample parameters)``.
        """
        if not isinstance(batch, torch.Tensor) or batch.ndim != 5:
            shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
            raise ValueError(f"augment_batch expects a (B, C, D, H, W) tensor, got {shape}")
        g = _as_numpy_rng(rng)
        params = [self.sample_params(g) for _ in range(batch.shape[0])]
        out = torch.stack(
            [roll_volume(v, p.shifts) if p.translate else v for v, p in zip(batch, params)]
        )
        rotated = [i for i, p in enumerate(params) if p.rotate and p.angle_deg != 0.0]
        if rotated:  # one batched resampling (same result as rotate_axial per volume)
            out[rotated] = rotate_axial_batch(
                out[rotated], [params[i].angle_deg for i in rotated], self.background
            )
        return out, params
