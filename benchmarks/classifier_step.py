"""Time the classifier's epoch parts with and without the channels_last_3d layout.

An epoch of the laptop classifier is a few training steps (ceil(real training
volumes / batch)), one BatchNorm re-estimation over the real training volumes and
one validation pass. This times each part for the config's classifier, once per
layout, on random volumes (speed does not depend on the values):

    python benchmarks/classifier_step.py --config config/config.yaml --threads 1

The default run trains its jobs on one thread each, two at a time on two cores.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import yaml

from brainaug.classify.loop import recalibrate_batchnorm
from brainaug.classify.networks import build_classifier
from brainaug.classify.predict import predict_proba
from brainaug.classify.settings import ClassifierSettings
from brainaug.device import num_threads


def _seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: oneDNN picks its kernels on the first call
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def time_layout(section: dict, size: int, n_train: int, n_val: int, channels_last: bool, repeats: int) -> dict:
    """Seconds per training step, per BatchNorm re-estimation and per validation pass."""
    settings = ClassifierSettings.from_config({**section, "channels_last": channels_last})
    torch.manual_seed(0)
    model = build_classifier(settings, 3, size)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    criterion = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    train = rng.standard_normal((n_train, size, size, size), dtype=np.float32)
    val = rng.standard_normal((n_val, size, size, size), dtype=np.float32)
    xb = torch.from_numpy(train[: settings.batch_size]).unsqueeze(1)
    yb = torch.arange(len(xb)) % 3

    def step() -> None:
        model.train()
        loss = criterion(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    t_step = _seconds(step, repeats)
    t_bn = _seconds(lambda: recalibrate_batchnorm(model, train, settings.batch_size, torch.device("cpu")), repeats)
    t_val = _seconds(lambda: predict_proba(model, val, settings.batch_size), repeats)
    steps = -(-n_train // settings.batch_size)
    return {"step": t_step, "bn": t_bn, "val": t_val, "epoch": steps * t_step + t_bn + t_val}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--size", type=int, default=None, help="volume side (default: preprocess.image_size)")
    parser.add_argument("--train", type=int, default=40, help="real training volumes (default run: 40)")
    parser.add_argument("--val", type=int, default=10, help="validation volumes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with open(args.config) as fh:
        cfg = yaml.safe_load(fh)
    section = dict(cfg.get("classifier") or {})
    size = args.size or int(cfg["preprocess"]["image_size"])
    print(f"{section.get('model', 'conv5_fc3')} at {size}^3, batch {section.get('batch_size')}, "
          f"{args.train} training and {args.val} validation volumes, {args.threads} thread(s), fp32\n")
    print("| layout | training step (ms) | BatchNorm re-estimation (ms) | validation (ms) | epoch (ms) |")
    print("|---|---|---|---|---|")
    with num_threads(args.threads):
        for channels_last in (False, True):
            t = time_layout(section, size, args.train, args.val, channels_last, args.repeats)
            name = "channels_last_3d" if channels_last else "contiguous (NCDHW)"
            print(f"| {name} | {1e3 * t['step']:.0f} | {1e3 * t['bn']:.0f} | {1e3 * t['val']:.0f} | "
                  f"{1e3 * t['epoch']:.0f} |")


if __name__ == "__main__":
    main()
