"""The 3D conditional alpha-GAN (Kwon et al. 2019): networks, losses, training, synthesis.

Typical use (one GAN per outer fold, on that fold's training subjects only)::

    settings = GANSettings.from_config(config["gan"])
    result = train_gan(volumes, labels, classes, settings, workdir=ckpt_dir, log=log)
    save_generator(out / "generator.pt", result.gan.generator, result.settings, classes)
    result.losses.to_csv(out / "losses.tsv", sep="\\t", index=False)
    vols, labs = synthesize(result.gan.generator, classes, settings.n_synthetic_per_class, settings.seed)
    save_synthetic(out, vols, labs, classes, affine)

``brainaug.gan.quality`` (MMD, MS-SSIM, memorization) lives beside these
modules and is imported on its own.
"""

from __future__ import annotations

from brainaug.gan.checkpoint import load_checkpoint, save_checkpoint
from brainaug.gan.networks import (
    AlphaGAN,
    CodeDiscriminator,
    Discriminator,
    Encoder,
    Generator,
    build_alpha_gan,
    count_parameters,
)
from brainaug.gan.settings import GANSettings
from brainaug.gan.synthesize import (
    load_generator,
    load_synthetic,
    save_generator,
    save_synthetic,
    synthesize,
)
from brainaug.gan.train import TrainingDivergedError, TrainResult, alpha_gan_step, train_gan

__all__ = [
    "AlphaGAN",
    "CodeDiscriminator",
    "Discriminator",
    "Encoder",
    "GANSettings",
    "Generator",
    "TrainResult",
    "TrainingDivergedError",
    "alpha_gan_step",
    "build_alpha_gan",
    "count_parameters",
    "load_checkpoint",
    "load_generator",
    "load_synthetic",
    "save_checkpoint",
    "save_generator",
    "save_synthetic",
    "synthesize",
    "train_gan",
]
