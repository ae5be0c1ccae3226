"""Networks, settings, losses and device helpers of the alpha-GAN."""

from __future__ import annotations

import sys

import pytest
import torch

from brainaug.device import adam, autocast, resolve_precision, to_channels_last
from brainaug.gan.losses import gradient_penalty
from brainaug.gan.networks import (
    CodeDiscriminator,
    Discriminator,
    Encoder,
    Generator,
    build_alpha_gan,
    code_hidden_units,
    count_parameters,
    stage_widths,
)
from brainaug.gan.settings import GANSettings
from brainaug.memory import retain_freed_memory

# Parameter counts of cyclomon/3dbraingen's Model_alphaWGAN.py at width 64, latent 1000, 64^3,
# computed layer by layer (weights + biases + BN affine).
REF_E = 4160 + (524416 + 256) + (2097408 + 512) + (8389120 + 1024) + 32769000  # 43.79M
REF_D = REF_E - 32769000 + (512 * 64 + 1)  # same trunk, 1-channel head: 11.05M
REF_G = 1000 * 512 * 64 + 1024 + 512 * 256 * 27 + 512 + 256 * 128 * 27 + 256 + 128 * 64 * 27 + 128 + 64 * 27  # 37.42M
REF_CD = (1000 * 4096 + 4096) + 2 * 4096 + (4096 * 4096 + 4096) + 2 * 4096 + (4096 + 1)  # 20.90M


def test_reference_parameter_counts_plus_conditioning():
    settings = GANSettings.from_config(
        dict(image_size=64, width=64, latent_dim=1000, conditioning="projection", output_base="none")
    )
    gan = build_alpha_gan(settings, n_classes=3)
    for count, quoted in ((REF_E, 43.8), (REF_G, 37.4), (REF_D, 11.1), (REF_CD, 20.9)):
        assert count / 1e6 == pytest.approx(quoted, abs=0.051)  # the figures the issue quotes
    assert count_parameters(gan.encoder) == REF_E
    assert count_parameters(gan.generator) == REF_G + 3 * 512 * 64  # one-hot label into the ConvTranspose3d
    assert count_parameters(gan.discriminator) == REF_D + 3 * 512  # projection embedding
    # The default conditioning adds an auxiliary-classifier head on D's 512 x 4^3 features
    # and the one-hot label to the code critic's input; the output base is a buffer.
    default = build_alpha_gan(settings.replace(conditioning="auxiliary", output_base="class_mean"), n_classes=3)
    assert count_parameters(default.discriminator) == REF_D + 3 * 512 + (512 * 64 * 3 + 3)
    assert count_parameters(default.code_discriminator) == REF_CD + 3 * 4096
    assert count_parameters(default.generator) == count_parameters(gan.generator)
    assert count_parameters(gan.code_discriminator) == REF_CD


@pytest.mark.parametrize(
    ("size", "expected"),
    [(16, [8, 16]), (32, [8, 16, 32]), (64, [8, 16, 32, 64]), (128, [8, 16, 32, 64, 128])],
)
def test_stage_widths_end_at_4_cubed(size, expected):
    assert stage_widths(size, 8) == expected


@pytest.mark.parametrize("size", [8, 24, 48])
def test_stage_widths_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="power of two >= 16"):
        stage_widths(size, 8)


def test_code_hidden_units_matches_reference_and_scales_down():
    assert code_hidden_units(1000) == 4096
    assert code_hidden_units(128) == 512
    assert code_hidden_units(8) == 256


@pytest.mark.parametrize("size", [16, 32])
def test_forward_shapes_and_ranges(size):
    torch.manual_seed(0)
    batch, latent, n_classes = 3, 8, 3
    x = torch.rand(batch, 1, size, size, size) * 2 - 1
    y = torch.tensor([0, 1, 2])
    enc, gen = Encoder(size, 4, latent), Generator(size, 4, latent, n_classes)
    disc, code = Discriminator(size, 4, n_classes), CodeDiscriminator(latent, 32)
    z = enc(x)
    assert z.shape == (batch, latent)
    out = gen(z, y)
    assert out.shape == (batch, 1, size, size, size)
    assert out.min() >= -1 and out.max() <= 1
    assert disc(x, y).shape == (batch,)
    assert code(z).shape == (batch,)


def test_discriminator_projection_depends_on_label():
    torch.manual_seed(0)
    disc = Discriminator(16, 4, 3).eval()
    x = torch.rand(1, 1, 16, 16, 16).repeat(3, 1, 1, 1, 1)
    y = torch.tensor([0, 1, 2])
    out0 = disc(x, y)
    # zero-initialised embedding: an untrained critic is the unconditional reference critic
    assert torch.allclose(out0, out0[0].expand(3))
    torch.nn.init.normal_(disc.embed.weight)
    out1 = disc(x, y)
    assert not torch.allclose(out1[0], out1[1])


def test_generator_label_changes_output():
    torch.manual_seed(0)
    gen = Generator(16, 4, 8, 3).eval()
    z = torch.randn(1, 8).repeat(3, 1)
    out = gen(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(out[0], out[1])


def test_networks_reject_wrong_shapes():
    with pytest.raises(ValueError, match=r"expected a tensor of shape \(B, 1, 16, 16, 16\)"):
        Encoder(16, 4, 8)(torch.zeros(2, 1, 32, 32, 32))
    with pytest.raises(ValueError, match=r"Generator z: expected shape \(B, 8\)"):
        Generator(16, 4, 8, 3)(torch.zeros(2, 9), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Generator y: expected shape \(2,\)"):
        Generator(16, 4, 8, 3)(torch.zeros(2, 8), torch.zeros(3, dtype=torch.long))


def test_build_is_seeded_and_leaves_global_rng_alone():
    settings = GANSettings.from_config(dict(image_size=16, width=4, latent_dim=8, seed=3))
    before = torch.get_rng_state()
    a = build_alpha_gan(settings, 3)
    assert torch.equal(before, torch.get_rng_state())
    b = build_alpha_gan(settings, 3)
    c = build_alpha_gan(settings.replace(seed=4), 3)
    wa, wb, wc = (m.encoder.head.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_settings_from_config_defaults_and_roundtrip():
    # The reference's Adam betas, given explicitly (the default is the WGAN-GP choice).
    settings = GANSettings.from_config({"image_size": 64, "width": 64, "latent_dim": 1000, "betas": [0.9, 0.999]})
    assert settings.lr == 2e-4 and settings.lambda_gp == 10.0 and settings.lambda_l1 == 10.0
    assert settings.betas == (0.9, 0.999) and settings.n_stages == 4
    assert GANSettings.from_config({}).betas == (0.5, 0.9)
    assert GANSettings.from_dict(settings.to_dict()) == settings
    assert GANSettings.from_config(None) == GANSettings.from_config({})


@pytest.mark.parametrize(
    ("section", "error", "match"),
    [
        ({"widht": 8}, ValueError, "unknown keys \\['widht'\\]"),
        ({"image_size": 48}, ValueError, "gan.image_size: expected one of"),
        ({"precision": "fp16"}, ValueError, "gan.precision: expected one of"),
        ({"conditioning": "concat"}, ValueError, "gan.conditioning: expected one of"),
        ({"batch_size": 1}, ValueError, "gan.batch_size: 1 is less than the minimum of 2"),
        ({"width": 8.5}, TypeError, "gan.width: expected an integer, got float"),
        ({"lr": 0}, ValueError, "gan.lr: 0 is less than or equal to the minimum of 0"),
    ],
)
def test_settings_reject_bad_values(section, error, match):
    with pytest.raises(error, match=match):
        GANSettings.from_config(section)


def test_settings_section_must_be_a_mapping():
    with pytest.raises(TypeError, match="expected a mapping, got list"):
        GANSettings.from_config([1, 2])


def test_gradient_penalty_of_linear_critic():
    # f(x) = <w, x> has gradient w everywhere: GP = weight * (||w|| - 1)^2.
    w = torch.zeros(1, 1, 4, 4, 4)
    w[0, 0, 0, 0, 0] = 2.0
    real, fake = torch.randn(3, 1, 4, 4, 4), torch.randn(3, 1, 4, 4, 4)
    gp = gradient_penalty(lambda v: (v * w).flatten(1).sum(1), real, fake, weight=10.0)
    assert gp.item() == pytest.approx(10.0, rel=1e-5)
    w[0, 0, 0, 0, 0] = 1.0
    assert gradient_penalty(lambda v: (v * w).flatten(1).sum(1), real, fake).item() == pytest.approx(0.0, abs=1e-5)


def test_gradient_penalty_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        gradient_penalty(lambda v: v.sum(1), torch.zeros(2, 3), torch.zeros(2, 4))


def test_precision_resolution_and_layout():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError, match="precision: expected one of"):
        resolve_precision("half", cpu)
    x = to_channels_last(torch.zeros(2, 3, 4, 4, 4))
    assert x.is_contiguous(memory_format=torch.channels_last_3d)
    assert to_channels_last(torch.zeros(2, 3)).shape == (2, 3)
    with autocast(cpu, torch.bfloat16):
        assert torch.nn.functional.linear(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16


def test_fused_adam_makes_the_default_update():
    torch.manual_seed(5)
    weights = [torch.nn.Parameter(torch.randn(6, 4)) for _ in range(2)]
    for w in weights:
        w.grad = torch.randn_like(w)
    fused = adam([weights[0]], lr=0.1, betas=(0.5, 0.999))
    plain = adam([weights[1]], fused=False, lr=0.1, betas=(0.5, 0.999))
    assert not plain.defaults.get("fused")
    start = [w.detach().clone() for w in weights]
    weights[1].grad = weights[0].grad.clone()
    weights[1].data.copy_(weights[0].data)
    fused.step()
    plain.step()
    assert not torch.equal(weights[0].detach(), start[0])
    torch.testing.assert_close(weights[0].detach(), weights[1].detach())


def test_retain_freed_memory_takes_effect_on_glibc_linux():
    import platform

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert retain_freed_memory() is glibc
