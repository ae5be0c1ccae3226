"""Classic augmentation as the study describes it, without a train/test shift.

With probability 0.95 translate: each spatial axis independently with probability
0.66 is rolled (``torch.roll``, voxels wrap around) by 1-4 voxels of the study's
64^3 grid in either direction. With probability 0.9 rotate in the axial plane by
an angle drawn uniformly from [-6, 6] degrees (outside filled with the background
value). Translation is applied before rotation, in the order the study lists them.

Why a rotation that is not bilinear exists. Validation and test volumes are never
rotated, so whatever the rotation does besides rotating is a difference between
training and test images. Bilinear resampling at 6 degrees on a 32^3 grid removes
about a third of the high-frequency energy inside the brain
(benchmarks/augmentation_shift.py): the network trains on blurred brains, much as
on atrophied ones, and is tested on sharp ones. Measured over three seeds, though,
the classifier scored lower with the sharp rotation than with bilinear, so the
workflow's default (``classifier.augment_rotation``) is ``"bilinear"``; the
functions here default to ``"fourier"``, the three-shear decomposition
of a rotation (Paeth 1986; Unser, Thevenaz & Yaroslavsky 1995)

    R(theta) = X(a) Y(b) X(a),   a = tan(theta / 2),  b = -sin(theta)

with each shear done as exact 1D Fourier-domain fractional shifts (sinc
interpolation). A Fourier shift only changes phases, so each shear keeps the
energy and the spectrum's magnitude of every line; the rotation keeps the
sharpness and (up to the ringing of edges the grid cannot resolve) the intensity
statistics. Each line is zero-padded (in background-subtracted intensities) to
an odd length beyond the largest displacement, so content never wraps around and
the real signal has no Nyquist bin that a shift would make complex.

Physical space. Preprocessed volumes lie on the template grid of
:func:`brainaug.template.output_grid`, whose voxels are anisotropic (4.75 x 5.88 x
5.08 mm at 32^3). A rotation of array indices would be a rotation plus a shear of
the head; given ``spacing`` (mm per axis) both rotations here rotate physical
space: the shear factors are scaled by the ratio of the voxel sizes (a shear in
mm is a shear in voxels, scaled), and the bilinear one conjugates the rotation by
the voxel size matrix. ``spacing=(1, 1, 1)`` (the default) is the former
index-space rotation. Rolls are whole voxels (so a roll only permutes voxels);
:meth:`RandomStudyAugmentation.physical` turns a largest shift in mm into a
per-axis largest roll in voxels.

Axis convention: volumes are ``(D, H, W)`` arrays (optionally with a leading
channel axis and batch axis) whose array axes are the NIfTI voxel axes
``(x, y, z)`` of a RAS-oriented image as loaded by nibabel (``img.get_fdata()``
and the volumes in ``results/preprocessed`` / ``results/dataset``). The axial
plane is therefore the plane of the first two spatial axes (x-y) and the
rotation is about the third (z). A positive angle moves content from +x towards
-y (MONAI ``Rotate`` convention, kept for both methods); the angle distribution
is symmetric, so the sign only matters for replay.

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
from scipy import ndimage

__all__ = [
    "AUGMENT_STEPS",
    "ROTATION_METHODS",
    "RandomStudyAugmentation",
    "StudyAugmentationParams",
    "apply_study_augmentation",
    "fourier_shift",
    "max_roll_voxels",
    "roll_volume",
    "rotate_axial",
    "rotate_axial_batch",
]

#: Rotation interpolations: ``fourier`` (three shears, exact Fourier shifts) or ``bilinear``.
ROTATION_METHODS = ("fourier", "bilinear")
#: Which steps of the study's augmentation run: both, or one of them (for the ablation).
AUGMENT_STEPS = ("both", "roll", "rotate")

Spacing = tuple[float, float, float]


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


def _check_spacing(spacing: Sequence[float]) -> Spacing:
    values = tuple(float(s) for s in spacing)
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be three positive voxel sizes (mm) for x, y, z, got {tuple(spacing)!r}")
    return values  # type: ignore[return-value]


def _check_method(method: str) -> str:
    if method not in ROTATION_METHODS:
        raise ValueError(f"Unknown rotation method {method!r}; expected one of {list(ROTATION_METHODS)}")
    return method


def max_roll_voxels(max_shift_mm: float, spacing: Sequence[float]) -> tuple[int, int, int]:
    """Largest roll per axis, in whole voxels, for a largest shift of ``max_shift_mm``.

    ``max(1, round(max_shift_mm / voxel size))`` per axis: a roll must be whole
    voxels to only permute them, and every axis keeps at least the one-voxel roll.
    10.5 mm gives the study's 4 voxels at 64^3 on every axis of the template grid
    and 2 at 32^3.
    """
    if not (math.isfinite(max_shift_mm) and max_shift_mm > 0):
        raise ValueError(f"max_shift_mm must be a positive number of mm, got {max_shift_mm!r}")
    return tuple(max(1, int(round(max_shift_mm / s))) for s in _check_spacing(spacing))  # type: ignore[return-value]


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


def fourier_shift(x: torch.Tensor, shift: torch.Tensor, dim: int) -> torch.Tensor:
    """Circularly shift every line of ``x`` along ``dim`` by a fractional number of voxels.

    The shift theorem: multiplying the line's spectrum by ``exp(-2 pi i f t)`` moves
    its content by ``t`` voxels towards higher indices (sinc interpolation). Only
    phases change, so the shift is unitary; an odd line length (no Nyquist bin)
    keeps it exactly unitary and the output exactly real. Content wraps around:
    pad first if it must not.

    Args:
        x: real float tensor.
        shift: shifts in voxels, broadcastable against ``x`` with size 1 along ``dim``
            (one shift per line).
        dim: the axis along which to shift.
    """
    n = x.shape[dim]
    spectrum = torch.fft.rfft(x if x.is_floating_point() else x.float(), dim=dim)
    freq_shape = [1] * x.ndim
    freq_shape[dim] = n // 2 + 1
    freq = torch.fft.rfftfreq(n, device=x.device, dtype=torch.float64).reshape(freq_shape)
    phase = torch.polar(torch.ones((), dtype=torch.float64, device=x.device), -2.0 * math.pi * freq * shift.double())
    return torch.fft.irfft(spectrum * phase.to(spectrum.dtype), n=n, dim=dim)


#: Voxels within this of the background value count as background.
_BACKGROUND_TOLERANCE = 1e-6


def _smooth_odd_length(n: int) -> int:
    """The smallest odd length >= n whose only prime factors are 3, 5 and 7 (fast FFTs)."""
    m = n + 1 - n % 2
    while True:
        k = m
        for p in (3, 5, 7):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 2


def _odd_padding(n: int, displacement: float) -> tuple[int, int]:
    """(before, after) padding that holds ``displacement`` voxels on both sides.

    The padded length is odd (no Nyquist bin) and 3-5-7-smooth: a prime length such
    as 37 would make each FFT several times slower.
    """
    pad = int(math.ceil(displacement)) + 2
    total = _smooth_odd_length(n + 2 * pad) - n
    return total // 2, total - total // 2


def _extend_nearest(volume: np.ndarray, mask: np.ndarray, spacing: Spacing) -> np.ndarray:
    """``volume`` (C, X, Y, Z) with every voxel outside ``mask`` set to its nearest (in mm) masked voxel."""
    index = ndimage.distance_transform_edt(~mask, sampling=spacing, return_distances=False, return_indices=True)
    return volume[(slice(None), *index)]


def _three_shears(parts: Sequence[tuple[torch.Tensor, str]], a: float, b: float) -> list[torch.Tensor]:
    """Shear x by ``a`` y, y by ``b`` x, x by ``a`` y (voxels) about the grid centre.

    Args:
        parts: ``(C, X, Y, Z)`` float volumes of one shape, each with its padding mode
            (as in ``torch.nn.functional.pad``): each is padded beyond the largest
            displacement to odd in-plane lengths, all are sheared in one pass (one
            set of FFTs), then cropped back.
        a, b: shear factors in voxels.
    """
    _, nx, ny, _ = parts[0][0].shape
    d1 = abs(a) * (ny - 1) / 2.0  # largest x displacement of the first shear
    d2 = abs(b) * ((nx - 1) / 2.0 + d1)  # largest y displacement of the second
    d3 = abs(a) * ((ny - 1) / 2.0 + d2)  # largest x displacement of the third
    px, py = _odd_padding(nx, d1 + d3), _odd_padding(ny, d2)
    pad = (0, 0, py[0], py[1], px[0], px[1])
    x = torch.cat([torch.nn.functional.pad(v, pad, mode=mode) for v, mode in parts])
    xs = torch.arange(x.shape[1], dtype=torch.float64, device=x.device) - (px[0] + (nx - 1) / 2.0)
    ys = torch.arange(x.shape[2], dtype=torch.float64, device=x.device) - (py[0] + (ny - 1) / 2.0)
    shear_x = (a * ys).reshape(1, 1, -1, 1)  # shift along x of each y line
    shear_y = (b * xs).reshape(1, -1, 1, 1)  # shift along y of each x line
    x = fourier_shift(x, shear_x, dim=1)
    x = fourier_shift(x, shear_y, dim=2)
    x = fourier_shift(x, shear_x, dim=1)
    x = x[:, px[0] : px[0] + nx, py[0] : py[0] + ny]
    return list(torch.split(x, [len(v) for v, _ in parts]))


def _rotate_fourier_one(volume: torch.Tensor, angle_rad: float, spacing: Spacing) -> torch.Tensor:
    """Three-shear rotation of one ``(C, X, Y, Z)`` volume whose background is 0.

    Sinc interpolation rings at steps, and the brain's edge against a constant
    background is the sharpest step in the volume (at 32^3 a plain Fourier
    rotation overshoots to -1.44..1.54 on [-1, 1] data and leaves three quarters of
    the background off its value). So the brain is rotated without its edge and
    the edge is put back:

    1. the foreground (voxels other than background) is extended over the
       background with each background voxel's nearest foreground value (in mm);
    2. that edgeless volume is rotated (replicate padding: no step at the field
       of view's border either), and so is the foreground mask (threshold 0.5);
    3. outside the rotated mask the voxels are background again, inside they are
       clipped to the volume's foreground range.

    Rotated volumes then have an exactly constant background and no values the
    original could not hold, like the never-rotated test volumes. The padding
    depends on this volume's angle only, so a volume rotates the same alone or
    in a batch.
    """
    sx, sy, _ = spacing
    # In mm the shears are x += a y and y += b x; in voxels their factors scale by
    # the ratio of the voxel sizes.
    a = math.tan(angle_rad / 2.0) * (sy / sx)
    b = -math.sin(angle_rad) * (sx / sy)
    values = volume.detach().cpu().float()
    mask = (values.abs() > _BACKGROUND_TOLERANCE).any(dim=0)
    if not bool(mask.any()):
        return volume.clone()
    lo, hi = float(values[:, mask].min()), float(values[:, mask].max())
    if not bool(mask.all()):
        values = torch.from_numpy(_extend_nearest(values.numpy(), mask.numpy(), spacing))
    rotated, inside = _three_shears([(values, "replicate"), (mask[None].float(), "constant")], a, b)
    out = torch.where(inside[0] > 0.5, rotated.clamp(lo, hi), torch.zeros(()))
    return out.to(device=volume.device, dtype=volume.dtype)


def _rotate_bilinear(batch: torch.Tensor, angles_deg: Sequence[float], spacing: Spacing) -> torch.Tensor:
    """MONAI bilinear rotation of ``(B, C, X, Y, Z)`` (background 0), conjugated to physical space."""
    # Imported here: MONAI takes 1.7 s to import, paid by every classifier job that never rotates.
    from monai.networks.layers import AffineTransform
    from monai.transforms.utils import create_rotate

    scale = np.diag([*spacing, 1.0])
    inv_scale = np.diag([*(1.0 / s for s in spacing), 1.0])
    theta = torch.stack(
        [
            torch.as_tensor(
                inv_scale @ np.asarray(create_rotate(3, (0.0, 0.0, math.radians(float(a))))) @ scale,
                dtype=torch.float32,
            )
            for a in angles_deg
        ]
    ).to(batch.device)
    resample = AffineTransform(
        normalized=False, mode="bilinear", padding_mode="zeros", align_corners=False, zero_centered=True
    )
    return resample(batch.float(), theta)


def rotate_axial_batch(
    batch: torch.Tensor,
    angles_deg: Sequence[float],
    background: float = -1.0,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    method: str = "fourier",
) -> torch.Tensor:
    """Rotate each volume of a batch in the axial (x-y) plane about the image centre.

    Voxels that come from outside the field of view take ``background`` (done exactly
    by shifting intensities so the background is 0, rotating with zero fill, and
    shifting back).

    Args:
        batch: tensor ``(B, C, D, H, W)``, spatial axes (x, y, z).
        angles_deg: B angles in degrees.
        background: fill value for voxels rotated in from outside.
        spacing: voxel size (mm) per axis; the rotation is a rotation of physical space.
        method: ``"fourier"`` (three shears, exact Fourier shifts: keeps sharpness) or
            ``"bilinear"`` (MONAI's ``AffineTransform``, as MONAI ``Rotate``; blurs).

    Returns:
        Tensor of the batch's shape and dtype.
    """
    if not isinstance(batch, torch.Tensor) or batch.ndim != 5 or len(angles_deg) != batch.shape[0]:
        shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise ValueError(
            f"rotate_axial_batch expects (B, C, D, H, W) and B angles, got shape {shape} and {len(angles_deg)} angles"
        )
    spacing = _check_spacing(spacing)
    _check_method(method)
    centred = batch.float() - background
    if method == "fourier":
        out = torch.stack(
            [_rotate_fourier_one(v, math.radians(float(a)), spacing) for v, a in zip(centred, angles_deg)]
        )
    else:
        out = _rotate_bilinear(centred, angles_deg, spacing)
    return out.to(batch.dtype) + background


def rotate_axial(
    volume: torch.Tensor,
    angle_deg: float,
    background: float = -1.0,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    method: str = "fourier",
) -> torch.Tensor:
    """Rotate one volume ``(D, H, W)`` or ``(C, D, H, W)``; see :func:`rotate_axial_batch`.

    An angle of 0 returns the volume itself (no resampling, so no ringing or blur).
    """
    _spatial_dims(volume)
    if volume.ndim not in (3, 4):
        raise ValueError(
            f"rotate_axial expects (D, H, W) or (C, D, H, W), got shape {tuple(volume.shape)}"
        )
    _check_spacing(spacing)
    _check_method(method)
    if angle_deg == 0.0:
        return volume
    x = volume[None, None] if volume.ndim == 3 else volume[None]
    out = rotate_axial_batch(x, [angle_deg], background, spacing, method)
    return out[0, 0] if volume.ndim == 3 else out[0]


def apply_study_augmentation(
    volume: torch.Tensor,
    params: StudyAugmentationParams,
    background: float = -1.0,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    method: str = "fourier",
) -> torch.Tensor:
    """Deterministic twin of :class:`RandomStudyAugmentation`: roll, then rotate.

    Args:
        volume: tensor ``(D, H, W)`` or ``(C, D, H, W)``, axes (x, y, z).
        params: recorded parameters.
        background: fill value for rotation.
        spacing: voxel size (mm) per axis, for the rotation.
        method: rotation interpolation (see :func:`rotate_axial_batch`).
    """
    out = volume
    if params.translate:
        out = roll_volume(out, params.shifts)
    if params.rotate:
        out = rotate_axial(out, params.angle_deg, background=background, spacing=spacing, method=method)
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
            drawn uniformly. ``max_shift`` may be one int or one per axis (x, y, z), as
            :meth:`physical` sets it from a shift in mm.
        p_rotate: probability of the rotate step.
        max_angle_deg: angle drawn uniformly from [-max_angle_deg, max_angle_deg].
        background: fill value for voxels rotated in from outside.
        spacing: voxel size (mm) per axis; rotations rotate physical space.
        rotation: ``"fourier"`` (keeps sharpness) or ``"bilinear"`` (the former, blurring one).
        steps: ``"both"`` (the study), ``"roll"`` or ``"rotate"`` (only that step, for the
            ablation; the other is drawn and discarded so seeds stay comparable).

    ``last_params`` holds the parameters of the most recent call, for replay.
    """

    p_translate: float = 0.95
    p_axis: float = 0.66
    min_shift: int = 1
    max_shift: int | tuple[int, int, int] = 4
    p_rotate: float = 0.9
    max_angle_deg: float = 6.0
    background: float = -1.0
    spacing: Spacing = (1.0, 1.0, 1.0)
    rotation: str = "fourier"
    steps: str = "both"
    last_params: StudyAugmentationParams | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("p_translate", "p_axis", "p_rotate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        highs = self.max_shift if isinstance(self.max_shift, Sequence) else (self.max_shift,) * 3
        if len(highs) != 3 or not all(1 <= self.min_shift <= int(h) for h in highs):
            raise ValueError(
                f"Expected 1 <= min_shift <= max_shift (one int or one per axis x, y, z), got "
                f"min_shift={self.min_shift}, max_shift={self.max_shift}"
            )
        self.max_shift = tuple(int(h) for h in highs) if isinstance(self.max_shift, Sequence) else int(self.max_shift)
        if self.max_angle_deg < 0:
            raise ValueError(f"max_angle_deg must be >= 0, got {self.max_angle_deg!r}")
        self.spacing = _check_spacing(self.spacing)
        _check_method(self.rotation)
        if self.steps not in AUGMENT_STEPS:
            raise ValueError(f"Unknown augmentation steps {self.steps!r}; expected one of {list(AUGMENT_STEPS)}")

    @classmethod
    def physical(
        cls, spacing: Sequence[float], max_shift_mm: float, **kwargs: object
    ) -> RandomStudyAugmentation:
        """The augmentation on a grid of voxel size ``spacing`` (mm), rolls up to ``max_shift_mm``.

        Each axis rolls by 1..:func:`max_roll_voxels` whole voxels, so the physical
        range is the same on every axis and at every image size.
        """
        spacing = _check_spacing(spacing)
        return cls(spacing=spacing, max_shift=max_roll_voxels(max_shift_mm, spacing), **kwargs)  # type: ignore[arg-type]

    def sample_params(self, rng: np.random.Generator | int | None = None) -> StudyAugmentationParams:
        """Draw one set of parameters (cheap; no image work).

        Args:
            rng: numpy Generator (advanced in place), an int seed, or None (fresh entropy).
        """
        g = _as_numpy_rng(rng)
        # Always consume the same number of draws so a sequence stays aligned.
        u_translate, u_rotate = g.random(2)
        u_axes = g.random(3)
        magnitudes = g.integers(self.min_shift, np.asarray(self.max_shift) + 1, size=3)
        signs = g.choice(np.array([-1, 1]), size=3)
        angle = g.uniform(-self.max_angle_deg, self.max_angle_deg)
        translate = bool(u_translate < self.p_translate) and self.steps != "rotate"
        shifts = tuple(
            int(m * s) if (translate and u < self.p_axis) else 0
            for m, s, u in zip(magnitudes, signs, u_axes)
        )
        rotate = bool(u_rotate < self.p_rotate) and self.steps != "roll"
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
        return apply_study_augmentation(volume, params, self.background, self.spacing, self.rotation)

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
                out[rotated], [params[i].angle_deg for i in rotated], self.background, self.spacing, self.rotation
            )
        return out, params
