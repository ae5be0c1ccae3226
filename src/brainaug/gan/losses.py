"""Losses of the alpha-GAN with WGAN-GP critics (Kwon et al. 2019; Gulrajani et al. 2017).

With ``x`` real volumes, ``y`` their diagnoses, ``z ~ N(0, I)``, ``x_rec = G(E(x), y)``
and ``x_rand = G(z, y)``:

* E/G:  ``lambda_l1 * L1(x_rec, x) - CD(E(x)) - D(x_rec, y) - D(x_rand, y)``
* D:    ``-2 D(x, y) + D(x_rec, y) + D(x_rand, y) + GP(x, x_rand) + GP(x, x_rec)``
* CD:   ``CD(E(x)) - CD(z) + GP(E(x), z)``

where every ``GP`` is ``lambda_gp * mean((||grad_x_hat f(x_hat)||_2 - 1)^2)`` on
random interpolates ``x_hat`` (Gulrajani et al. 2017, eq. 3). Critic means are
taken per term, as in the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "gradient_penalty",
    "encoder_generator_loss",
    "discriminator_loss",
    "code_discriminator_loss",
]

_EPS = 1e-12


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``weight * mean((||grad f(x_hat)|| - 1)^2)`` on interpolates of ``real`` and ``fake``.

    Args:
        critic: maps a batch shaped like ``real`` to ``(B,)`` scores (close over
            labels for a conditional critic).
        real: ``(B, ...)`` real samples (volumes ``(B, 1, S, S, S)`` or codes ``(B, L)``).
        fake: same shape as ``real``; both are detached here.
        weight: lambda.
        generator: RNG for the per-sample mixing weights (``real``'s device is
            used when the generator lives there, else the weights are drawn on
            CPU and moved), so training can be replayed exactly.

    Returns:
        A scalar tensor, differentiable w.r.t. the critic's parameters.

    Raises:
        ValueError: when ``real`` and ``fake`` differ in shape.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    gen_device = generator.device if generator is not None else real.device
    alpha = torch.rand(shape, generator=generator, device=gen_device, dtype=torch.float32).to(real.device)
    mixed = (alpha * real.detach().float() + (1 - alpha) * fake.detach().float())
    if real.dim() == 5 and real.is_contiguous(memory_format=torch.channels_last_3d):
        mixed = mixed.contiguous(memory_format=torch.channels_last_3d)
    mixed.requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.float().sum(), mixed, create_graph=True)
    norm = torch.sqrt(grad.float().flatten(1).pow(2).sum(1) + _EPS)
    return weight * (norm - 1.0).pow(2).mean()


def encoder_generator_loss(
    real: torch.Tensor,
    reconstruction: torch.Tensor,
    d_reconstruction: torch.Tensor,
    d_random: torch.Tensor,
    cd_code: torch.Tensor,
    lambda_l1: float = 10.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """E/G loss ``lambda_l1 * L1(x_rec, x) - CD(E(x)) - D(x_rec) - D(x_rand)``.

    Args:
        real: ``(B, 1, S, S, S)`` real volumes.
        reconstruction: ``G(E(x), y)``, same shape.
        d_reconstruction, d_random: ``(B,)`` critic scores of ``G(E(x), y)`` and ``G(z, y)``.
        cd_code: ``(B,)`` code-critic scores of ``E(x)``.
        lambda_l1: weight of the reconstruction term.

    Returns:
        The loss and its parts as detached scalar tensors (``eg_l1``, ``eg_adv``, ``eg_code``).
    """
    l1 = lambda_l1 * F.l1_loss(reconstruction.float(), real.float())
    adv = -d_reconstruction.float().mean() - d_random.float().mean()
    code = -cd_code.float().mean()
    loss = l1 + adv + code
    return loss, {"eg_l1": l1.detach(), "eg_adv": adv.detach(), "eg_code": code.detach()}


def discriminator_loss(
    d_real: torch.Tensor,
    d_reconstruction: torch.Tensor,
    d_random: torch.Tensor,
    gp_random: torch.Tensor,
    gp_reconstruction: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """D loss ``-2 D(x) + D(x_rec) + D(x_rand) + GP(x, x_rand) + GP(x, x_rec)``.

    Args:
        d_real, d_reconstruction, d_random: ``(B,)`` critic scores.
        gp_random, gp_reconstruction: scalar penalties from :func:`gradient_penalty`.

    Returns:
        The loss and its parts (``d_wasserstein`` = the critic's estimate of the
        distance, ``d_gp``).
    """
    wasserstein = 2 * d_real.float().mean() - d_reconstruction.float().mean() - d_random.float().mean()
    gp = gp_random + gp_reconstruction
    loss = -wasserstein + gp
    return loss, {"d_wasserstein": wasserstein.detach(), "d_gp": gp.detach()}


def code_discriminator_loss(
    cd_code: torch.Tensor,
    cd_prior: torch.Tensor,
    gp_code: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """CD loss ``CD(E(x)) - CD(z) + GP(E(x), z)``.

    Args:
        cd_code: ``(B,)`` scores of encoded codes ``E(x)``.
        cd_prior: ``(B,)`` scores of prior samples ``z``.
        gp_code: scalar penalty from :func:`gradient_penalty`.

    Returns:
        The loss and its parts (``cd_wasserstein``, ``cd_gp``).
    """
    wasserstein = cd_prior.float().mean() - cd_code.float().mean()
    loss = -wasserstein + gp_code
    return loss, {"cd_wasserstein": wasserstein.detach(), "cd_gp": gp_code.detach()}
