"""Faster implementations of three alpha-GAN layers that compute exactly the reference's functions.

The parameters (shapes, initialisation, state-dict keys) are those of the
plain ``nn.Conv3d`` / ``nn.ConvTranspose3d`` they replace, so parameter counts
and seeded initial weights are unchanged; only how the output is computed differs.

* :class:`NearestUpsampleConv3d`: nearest x2 upsampling followed by a 3x3x3
  convolution (padding 1, no bias), the generator's block. On the fine grid
  every output voxel only sees 2 distinct coarse voxels per axis, so the pair
  is one 2x2x2 convolution on the coarse grid per output parity (8 of them,
  with folded weights), interleaved afterwards. That is 27/8 = 3.4x fewer
  multiply-adds and never materialises the upsampled volume (inputs of at
  least 8^3; smaller ones take the plain path, which is faster there); the generator's
  last layer (64 -> 1 channels at 64^3) was the slowest op of the whole
  iteration in both fp32 and bf16 (oneDNN handles one output channel badly).
* :class:`DenseConv3d` and :class:`DenseConvTranspose3d`: a k4 convolution on
  a 4^3 input without padding (encoder and critic heads) and a k4 transposed
  convolution of a 1^3 input (generator stem) are matrix products. At batch 4
  they are bound by reading the weights (up to 33M of them), so they run as
  one fp32 GEMM even under bf16 autocast: casting the weights to bf16 on
  every call cost more than the product itself, and the weights stay in the
  default contiguous layout for the same reason (see :meth:`_apply`).

:func:`set_plain_layers` switches a network back to the plain computations
(upsample then convolve; the library convolutions under autocast): tests use
them as the oracle and ``benchmarks/gan_step.py --compare-fp32`` times them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "NearestUpsampleConv3d",
    "DenseConv3d",
    "DenseConvTranspose3d",
    "fold_upsample_kernel",
    "set_plain_layers",
]

# For an output parity p (0: even, 1: odd fine index), which of the three
# fine-grid taps (offsets -1, 0, +1) land on each of the two coarse voxels
# the 2-wide folded kernel sees (coarse offsets -1, 0 for p=0; 0, +1 for p=1).
_TAPS = torch.tensor(
    [
        [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]],
        [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    ]
)


def fold_upsample_kernel(weight: torch.Tensor, taps: torch.Tensor | None = None) -> torch.Tensor:
    """Fold a ``(O, I, 3, 3, 3)`` kernel applied after nearest x2 upsampling into ``(8*O, I, 2, 2, 2)``.

    Output channel ``((p*2 + q)*2 + r)*O + o`` is the kernel of fine-grid
    parity ``(p, q, r)``; it is applied to the coarse input padded by one
    voxel, and parity ``p`` reads the result from index ``p`` on along that axis.
    ``taps`` is :data:`_TAPS` already on the weight's device (a module buffer),
    which saves a host-to-device copy, and with it a stream sync, per call on a GPU.
    """
    if weight.dim() != 5 or tuple(weight.shape[2:]) != (3, 3, 3):
        raise ValueError(f"fold_upsample_kernel: expected a (O, I, 3, 3, 3) kernel, got {tuple(weight.shape)}")
    taps = (_TAPS if taps is None else taps).to(device=weight.device, dtype=weight.dtype)
    out_ch, in_ch = weight.shape[:2]
    folded = torch.einsum("pua,qvb,rwc,oiabc->pqroiuvw", taps, taps, taps, weight)
    return folded.reshape(8 * out_ch, in_ch, 2, 2, 2)


#: Smallest coarse input folded: on 4^3 the folding (weights 2.4x the kernel's
#: size, forward and backward) cost more than the saved multiply-adds (measured
#: 133 ms against 109 ms for 512 -> 256 channels at batch 4, bf16, 2 cores).
_MIN_FOLDED_SIZE = 8


class NearestUpsampleConv3d(nn.Conv3d):
    """``Conv3d(k3, p1, no bias)`` of the nearest x2 upsampled input, computed on the coarse grid.

    Args:
        in_channels, out_channels: as for ``nn.Conv3d``.

    Forward: ``(B, I, S, S, S)`` -> ``(B, O, 2S, 2S, 2S)``.
    """

    plain = False

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.register_buffer("taps", _TAPS.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, d, h, w = x.shape
        if self.plain or min(d, h, w) < _MIN_FOLDED_SIZE:
            return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))
        out_ch = self.out_channels
        with torch.autocast(x.device.type, enabled=False):
            kernel = fold_upsample_kernel(self.weight, self.taps)  # folded in fp32; autocast casts it below
        y = F.conv3d(F.pad(x, (1, 1, 1, 1, 1, 1)), kernel)  # (B, 8*O, d+1, h+1, w+1)
        layout = torch.channels_last_3d if _is_channels_last(y) else torch.contiguous_format
        return _InterleaveParities.apply(y.view(batch, 2, 2, 2, out_ch, d + 1, h + 1, w + 1), layout)


def _parity_slices(d: int, h: int, w: int):  # type: ignore[no-untyped-def]
    """(index into the fine grid, index into the per-parity coarse results) for the 8 parities."""
    for p in (0, 1):
        for q in (0, 1):
            for r in (0, 1):
                fine = (slice(None), slice(None), slice(p, None, 2), slice(q, None, 2), slice(r, None, 2))
                coarse = (slice(None), p, q, r, slice(None), slice(p, p + d), slice(q, q + h), slice(r, r + w))
                yield fine, coarse


class _InterleaveParities(torch.autograd.Function):
    """``(B, 2, 2, 2, O, d+1, h+1, w+1)`` per-parity results -> ``(B, O, 2d, 2h, 2w)``.

    A Function rather than eight slice assignments under autograd: their
    backward filled eight full-size zero tensors and summed them (0.23 s of
    zero-filling per study-size iteration on 2 cores); this one fills one.
    """

    @staticmethod
    def forward(ctx, y: torch.Tensor, layout: torch.memory_format) -> torch.Tensor:  # type: ignore[override]
        batch, out_ch = y.shape[0], y.shape[4]
        d, h, w = (n - 1 for n in y.shape[5:])
        ctx.y_size, ctx.y_stride = y.size(), y.stride()
        out = torch.empty((batch, out_ch, 2 * d, 2 * h, 2 * w), dtype=y.dtype, device=y.device, memory_format=layout)
        for fine, coarse in _parity_slices(d, h, w):
            out[fine] = y[coarse]
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        d, h, w = (n - 1 for n in ctx.y_size[5:])
        grad_y = torch.empty_strided(ctx.y_size, ctx.y_stride, dtype=grad_out.dtype, device=grad_out.device)
        grad_y.zero_()
        for fine, coarse in _parity_slices(d, h, w):
            grad_y[coarse] = grad_out[fine]
        return grad_y, None


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous()


class _ContiguousWeight:
    """Mixin: keep ``weight`` in the default layout whatever ``module.to(memory_format=...)`` asks.

    The dense layers read their weight as a ``(O, I*k^3)`` matrix; in
    channels_last_3d that view would need a copy of up to 131 MB per call.
    """

    def _apply(self, fn, recurse: bool = True):  # type: ignore[no-untyped-def]
        module = super()._apply(fn, recurse)  # type: ignore[misc]
        if not self.weight.is_contiguous():
            self.weight.data = self.weight.data.contiguous()
        return module


class DenseConv3d(_ContiguousWeight, nn.Conv3d):
    """A Conv3d whose kernel covers its whole input (k4 on 4^3, no padding), run as one fp32 matrix product.

    Forward: ``(B, I, k, k, k)`` -> ``(B, O, 1, 1, 1)`` in fp32.
    """

    plain = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 4, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size=kernel_size, stride=1, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != tuple(self.kernel_size):
            raise ValueError(
                f"DenseConv3d: expected input of spatial size {tuple(self.kernel_size)}, got {tuple(x.shape)}"
            )
        if self.plain:
            return super().forward(x)
        with torch.autocast(x.device.type, enabled=False):
            out = F.linear(x.to(self.weight.dtype).flatten(1), self.weight.flatten(1), self.bias)
        return out[:, :, None, None, None]


class DenseConvTranspose3d(_ContiguousWeight, nn.ConvTranspose3d):
    """A bias-free ConvTranspose3d of a 1^3 input (the generator's stem), run as one fp32 matrix product.

    Forward: ``(B, I, 1, 1, 1)`` -> ``(B, O, k, k, k)`` in fp32.
    """

    plain = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 4) -> None:
        super().__init__(in_channels, out_channels, kernel_size=kernel_size, stride=1, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if tuple(x.shape[2:]) != (1, 1, 1):
            raise ValueError(f"DenseConvTranspose3d: expected input of spatial size (1, 1, 1), got {tuple(x.shape)}")
        if self.plain:
            return super().forward(x)
        with torch.autocast(x.device.type, enabled=False):
            out = x.to(self.weight.dtype).flatten(1) @ self.weight.flatten(1)
        return out.view(x.shape[0], self.out_channels, *self.kernel_size)


def set_plain_layers(module: nn.Module, plain: bool = True) -> nn.Module:
    """Make every layer of this module compute the plain way (``plain=True``) or the fast way; returns ``module``."""
    for layer in module.modules():
        if isinstance(layer, (NearestUpsampleConv3d, DenseConv3d, DenseConvTranspose3d)):
            layer.plain = plain
    return module
