"""The fast alpha-GAN layers compute exactly the reference layers' functions (values and gradients)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from brainaug.device import to_channels_last
from brainaug.gan.layers import (
    DenseConv3d,
    DenseConvTranspose3d,
    NearestUpsampleConv3d,
    fold_upsample_kernel,
    set_plain_layers,
)
from brainaug.gan.networks import build_alpha_gan
from brainaug.gan.settings import GANSettings

CL = torch.channels_last_3d


def _grads(module: nn.Module, x: torch.Tensor, plain: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    set_plain_layers(module, plain)
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    out = module(x)
    # a non-uniform upstream gradient, so every output voxel's gradient matters
    out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
    return out.detach(), x.grad, module.weight.grad


@pytest.mark.parametrize("shape", [(2, 3, 8, 8, 8), (1, 4, 8, 9, 10)])
def test_folded_upsample_conv_equals_upsample_then_conv(shape):
    torch.manual_seed(0)
    layer = NearestUpsampleConv3d(shape[1], 5).double()
    x = torch.randn(shape, dtype=torch.float64)
    out, gx, gw = _grads(layer, x, plain=False)
    ref, rx, rw = _grads(layer, x, plain=True)
    assert out.shape == (shape[0], 5, 2 * shape[2], 2 * shape[3], 2 * shape[4])
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx, rx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, rw, rtol=1e-12, atol=1e-12)


def test_folded_upsample_conv_in_channels_last_and_bf16():
    torch.manual_seed(1)
    layer = NearestUpsampleConv3d(16, 8).to(memory_format=CL)
    x = torch.randn(2, 16, 8, 8, 8).contiguous(memory_format=CL)
    out, gx, gw = _grads(layer, x, plain=False)
    ref, rx, rw = _grads(layer, x, plain=True)
    assert out.is_contiguous(memory_format=CL)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gx, rx, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gw, rw, rtol=1e-4, atol=1e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = layer(x)
    assert fast.dtype == torch.bfloat16
    assert (fast.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_small_inputs_take_the_plain_path_with_the_same_result():
    torch.manual_seed(2)
    layer = NearestUpsampleConv3d(3, 2).double()
    x = torch.randn(2, 3, 4, 4, 4, dtype=torch.float64)
    out = layer(x)
    set_plain_layers(layer)
    torch.testing.assert_close(out, layer(x))
    assert out.shape == (2, 2, 8, 8, 8)


def test_fold_rejects_non_3x3x3_kernels():
    with pytest.raises(ValueError, match=r"expected a \(O, I, 3, 3, 3\) kernel"):
        fold_upsample_kernel(torch.zeros(2, 3, 4, 4, 4))


def test_dense_layers_equal_library_convolutions_and_keep_fp32():
    torch.manual_seed(3)
    conv = DenseConv3d(6, 5).double()
    x = torch.randn(3, 6, 4, 4, 4, dtype=torch.float64)
    out, gx, gw = _grads(conv, x, plain=False)
    ref, rx, rw = _grads(conv, x, plain=True)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gw, rw)

    stem = DenseConvTranspose3d(7, 4).double()
    z = torch.randn(3, 7, 1, 1, 1, dtype=torch.float64)
    out, gz, gw = _grads(stem, z, plain=False)
    ref, rz, rw = _grads(stem, z, plain=True)
    assert out.shape == (3, 4, 4, 4, 4)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(gz, rz)
    torch.testing.assert_close(gw, rw)

    # under bf16 autocast they stay exact fp32 matrix products
    conv32 = DenseConv3d(6, 5)
    x32 = torch.randn(3, 6, 4, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = conv32(x32)
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, nn.functional.conv3d(x32, conv32.weight, conv32.bias))


def test_dense_layers_keep_contiguous_weights_in_channels_last_models_and_check_inputs():
    model = nn.Sequential(DenseConv3d(4, 3), DenseConvTranspose3d(3, 2))
    to_channels_last(model)
    assert all(m.weight.is_contiguous() for m in model)
    with pytest.raises(ValueError, match=r"DenseConv3d: expected input of spatial size \(4, 4, 4\)"):
        DenseConv3d(4, 3)(torch.zeros(1, 4, 8, 8, 8))
    with pytest.raises(ValueError, match=r"DenseConvTranspose3d: expected input of spatial size \(1, 1, 1\)"):
        DenseConvTranspose3d(4, 3)(torch.zeros(1, 4, 2, 2, 2))


def test_critic_gradient_penalty_needs_double_backward_through_dense_head():
    conv = DenseConv3d(2, 1).double()
    x = torch.randn(2, 2, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda v: conv(v), (x,))


def test_whole_alpha_gan_matches_plain_layers():
    settings = GANSettings.from_config(dict(image_size=32, width=4, latent_dim=16))
    gan = build_alpha_gan(settings, 3)
    torch.manual_seed(4)
    x = torch.rand(3, 1, 32, 32, 32, dtype=torch.float64) * 2 - 1
    y = torch.tensor([0, 1, 2])
    results = {}
    for plain in (False, True):
        for module in gan.modules().values():
            set_plain_layers(module.double(), plain)
        code = gan.encoder(x)
        fake = gan.generator(code, y)
        results[plain] = (code, fake, gan.discriminator(fake, y), gan.code_discriminator(code, y))
    for fast, ref in zip(results[False], results[True]):
        torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)
