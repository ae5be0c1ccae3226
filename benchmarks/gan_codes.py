"""Where do the encoder's codes sit, and does G(z) vary as much as real brains? One fold.

Trains fold ``--fold``'s alpha-GAN (the config's ``gan`` section, ``--set key=value``
overrides) on that fold's training subjects of a finished run (``--results``), then
prints:

* the codes E(x) of the training volumes (encoder in train mode, as the losses see
  them): mean norm against the prior's sqrt(latent_dim), mean |per-dimension mean|
  (prior: 0) and mean per-dimension SD across subjects (prior: 1);
* MS-SSIM within G(z, y) samples (z ~ N(0, I), 12 per class) against MS-SSIM within
  the real training volumes, and the samples' nearest-neighbour ratio;
* the same for the reconstructions G(E(x), y) and for z scaled by 1.5, 2 and 3.

``--code-critic-norm layer`` swaps the code critic's BatchNorm1d for LayerNorm (a
probe, not a setting): a WGAN-GP critic with BatchNorm scores the codes and the prior
draws in separate batches and so cannot see a shift shared by the whole batch.

    python benchmarks/gan_codes.py --results results --fold 0
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

from brainaug.dataset import load_dataset, select_subjects
from brainaug.gan.quality import ms_ssim_diversity, ms_ssim_params, nearest_neighbour_distances
from brainaug.gan.settings import GANSettings
from brainaug.gan.synthesize import recalibrate_batchnorm, synthesize
from brainaug.gan.train import train_gan
from brainaug.splits import fold_roles, read_splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--config", type=Path, default=Path(__file__).parents[1] / "config" / "config.yaml")
    parser.add_argument("--set", action="append", default=[], help="key=value over the gan section")
    parser.add_argument("--code-critic-norm", choices=["batch", "layer"], default="batch")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.code_critic_norm == "layer":
        torch.nn.BatchNorm1d = lambda n: torch.nn.LayerNorm(n)  # only the code critic uses BatchNorm1d

    path = args.results / "splits.json"
    splits = read_splits(path)
    roles = fold_roles(splits, args.fold, path)
    array, index = load_dataset(args.results / "dataset" / "volumes.npy", args.results / "dataset" / "index.tsv")
    real, labels, _ = select_subjects(array, index, sorted(roles["train"]))
    real = np.array(real, np.float32)
    classes = splits["classes"]
    section = dict(yaml.safe_load(args.config.read_text())["gan"])
    section.update({k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)})
    section.update(checkpoint_every=section["iterations"], image_size=real.shape[1])
    settings = GANSettings.from_config(section)
    with tempfile.TemporaryDirectory() as work:
        result = train_gan(real, labels, classes, settings, Path(work), log=io.StringIO(), device="cpu")

    params = ms_ssim_params(real.shape[1:])
    loo = float(np.median(nearest_neighbour_distances(real, real, exclude_identical_index=True)))

    def describe(name: str, volumes: np.ndarray, ratio: bool = True) -> None:
        ms = ms_ssim_diversity(volumes, np.random.default_rng(0), max_pairs=64, params=params)
        nn = f"{float(np.median(nearest_neighbour_distances(volumes, real))) / loo:.2f}" if ratio else "–"
        print(f"| {name} | {ms:.3f} | {nn} |")

    encoder, generator = result.gan.encoder, result.gan.generator
    with torch.no_grad():
        encoder.train()
        codes = torch.cat([encoder(torch.from_numpy(real[i:i + 4, None])) for i in range(0, len(real), 4)])
    print(f"codes of {len(real)} training volumes: mean norm {codes.norm(dim=1).mean():.1f} "
          f"(prior {settings.latent_dim ** 0.5:.1f}), mean |per-dimension mean| {codes.mean(0).abs().mean():.2f} "
          f"(prior 0), mean per-dimension SD {codes.std(0).mean():.2f} (prior 1)\n")
    print("| volumes | MS-SSIM within | nearest-neighbour ratio |\n|---|---|---|")
    describe("real training volumes", real, ratio=False)
    samples, _ = synthesize(generator, classes, 12, seed=1)
    describe("G(z, y), z ~ N(0, I)", samples)
    calibrated = recalibrate_batchnorm(generator, len(classes), 1)
    with torch.no_grad():
        describe("G(E(x), y), reconstructions", calibrated(codes, torch.from_numpy(np.array(labels))).numpy()[:, 0])
        y = torch.arange(len(classes)).repeat_interleave(12)
        for scale in (1.5, 2.0, 3.0):
            z = torch.randn(len(y), settings.latent_dim, generator=torch.Generator().manual_seed(1)) * scale
            describe(f"G({scale} z, y)", calibrated(z, y).numpy()[:, 0])


if __name__ == "__main__":
    main()
