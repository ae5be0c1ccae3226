"""One (repeat, fold)'s GAN: trained on that repeat's fold only, with that repeat's seed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainaug.device import num_threads
from brainaug.gan.fold import run_gan_fold
from brainaug.splits import fold_roles, make_splits, read_splits, repeat_seed, write_splits

CLASSES = ["CN", "AD"]
GAN = {
    "width": 4, "latent_dim": 8, "batch_size": 2, "iterations": 2, "checkpoint_every": 2, "log_every": 1,
    "precision": "fp32", "seed": 5, "n_synthetic_per_class": 2,
    # Two iterations on noise leave samples at their class means, nearer than any real pair: no gate here.
    "memorization_threshold": 0.0,
    "quality": {"max_pairs": 2, "mmd_repeats": 1, "mmd_batch_size": 2},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """8 subjects (4 per class), one 16^3 scan each, and splits.json with 2 repeats of 2 folds."""
    root = tmp_path_factory.mktemp("gan_fold")
    rows = [
        {"scan_id": f"sub-{c}{i}", "subject_id": f"{c}{i}", "session_id": "ses-01", "diagnosis": c, "label": label}
        for label, c in enumerate(CLASSES)
        for i in range(4)
    ]
    cohort = pd.DataFrame(rows)
    volumes = np.tanh(np.random.default_rng(0).normal(size=(len(rows), 16, 16, 16))).astype(np.float32)
    np.save(root / "volumes.npy", volumes)
    cohort[["scan_id", "subject_id", "diagnosis", "label"]].to_csv(root / "index.tsv", sep="\t", index=False)
    write_splits(make_splits(cohort, n_folds=2, seed=1, repeats=2), root / "splits.json")
    return {"volumes": root / "volumes.npy", "index": root / "index.tsv", "splits": root / "splits.json"}


@pytest.mark.parametrize("repeat", [0, 1])
def test_gan_of_a_repeat_uses_its_folds_and_seed(data, tmp_path, repeat):
    with num_threads(1):
        metrics = run_gan_fold(
            data["volumes"], data["index"], data["splits"], fold=1, gan_config=GAN, classes=CLASSES,
            image_size=16, strategies={"standard": {"synthetic_share": 0.0, "classic_augmentation": False}},
            outdir=tmp_path / "out", checkpoint_dir=tmp_path / "ckpt", log=io.StringIO(), device="cpu", repeat=repeat,
        )
    roles = fold_roles(read_splits(data["splits"]), 1, data["splits"], repeat=repeat)
    assert metrics["repeat"] == repeat and metrics["fold"] == 1
    assert metrics["train_subjects"] == sorted(roles["train"])
    # Repeat 0 keeps gan.seed itself (a one-repeat run is unchanged); repeat 1 derives its own.
    assert metrics["settings"]["seed"] == repeat_seed(5, repeat)
    assert (metrics["settings"]["seed"] == 5) == (repeat == 0)
