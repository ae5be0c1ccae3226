"""Sampling, synthetic-volume files, generator files and the sample grid."""

from __future__ import annotations

import io

import nibabel as nib
import numpy as np
import pytest
import torch

from brainaug.gan.checkpoint import CHECKPOINT_NAME
from brainaug.gan.networks import build_alpha_gan
from brainaug.gan.settings import GANSettings
from brainaug.gan.synthesize import (
    load_generator,
    load_synthetic,
    save_generator,
    save_synthetic,
    synthesize,
)
from brainaug.gan.train import train_gan

CLASSES = ["CN", "MCI", "AD"]
# No output base: an untrained generator with a base would draw the (here zero) base for every z.
SETTINGS = GANSettings.from_config(dict(image_size=16, width=4, latent_dim=8, batch_size=2, iterations=2,
                                        precision="fp32", seed=1, output_base="none"))
AFFINE = np.array([[1.5, 0, 0, -90.0], [0, 1.5, 0, -126.0], [0, 0, 1.5, -72.0], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def generator():
    gen = build_alpha_gan(SETTINGS, len(CLASSES)).generator
    with torch.no_grad():  # non-trivial running stats, as after training
        for module in gen.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return gen


def test_synthesize_shapes_labels_and_range(generator):
    volumes, labels = synthesize(generator, CLASSES, n_per_class=3, seed=0, batch_size=4)
    assert volumes.shape == (9, 16, 16, 16) and volumes.dtype == np.float32
    assert labels.dtype == np.int64 and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert volumes.min() >= -1 and volumes.max() <= 1
    assert generator.training  # mode restored


def test_synthesize_is_deterministic_by_seed_and_batch_independent(generator):
    a, _ = synthesize(generator, CLASSES, 2, seed=7, batch_size=1)
    b, _ = synthesize(generator, CLASSES, 2, seed=7, batch_size=6)
    c, _ = synthesize(generator, CLASSES, 2, seed=8, batch_size=6)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, c)


def test_synthesize_rejects_bad_arguments(generator):
    with pytest.raises(ValueError, match="n_per_class: expected a non-negative integer, got -1"):
        synthesize(generator, CLASSES, -1, seed=0)
    with pytest.raises(ValueError, match="trained for 3 classes, got 2"):
        synthesize(generator, ["CN", "AD"], 1, seed=0)
    with pytest.raises(ValueError, match="batch_size: expected a positive integer"):
        synthesize(generator, CLASSES, 1, seed=0, batch_size=0)


def test_save_synthetic_writes_npz_and_nifti_with_affine(tmp_path, generator):
    volumes, labels = synthesize(generator, CLASSES, 2, seed=0)
    out = save_synthetic(tmp_path, volumes, labels, CLASSES, AFFINE)
    names = sorted(p.name for p in (tmp_path / "synthetic").iterdir())
    assert names == sorted(f"{c}_{i:03d}.nii.gz" for c in CLASSES for i in range(2))
    image = nib.load(tmp_path / "synthetic" / "MCI_001.nii.gz")
    np.testing.assert_allclose(image.affine, AFFINE)
    np.testing.assert_allclose(image.get_fdata(dtype=np.float32), volumes[3])
    assert image.get_data_dtype() == np.float32
    vols, labs, classes = load_synthetic(out["npz"])
    np.testing.assert_array_equal(vols, volumes)
    assert labs.dtype == np.int64 and labs.tolist() == labels.tolist() and classes == CLASSES
    with np.load(tmp_path / "synthetic.npz", allow_pickle=False) as data:  # uncompressed, no pickles
        assert data["volumes"].dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": np.array([0, 5])}, r"expected values in \[0, 2\]"),
        ({"affine": np.eye(3)}, "finite 4x4 matrix"),
        ({"classes": ["CN", "M/CI", "AD"]}, "cannot be used in a file name"),
        ({"labels": np.array([0])}, r"labels: expected shape \(2,\)"),
    ],
)
def test_save_synthetic_rejects_bad_inputs(tmp_path, kwargs, match):
    args = {"volumes": np.zeros((2, 4, 4, 4), np.float32), "labels": np.array([0, 1]),
            "classes": CLASSES, "affine": AFFINE, **kwargs}
    with pytest.raises(ValueError, match=match):
        save_synthetic(tmp_path, **args)


def test_generator_file_roundtrip(tmp_path, generator):
    path = save_generator(tmp_path / "generator.pt", generator, SETTINGS, CLASSES)
    loaded, settings, classes = load_generator(path)
    assert settings == SETTINGS and classes == CLASSES and not loaded.training
    a, _ = synthesize(generator, CLASSES, 1, seed=3)
    b, _ = synthesize(loaded, CLASSES, 1, seed=3)
    np.testing.assert_array_equal(a, b)


def test_load_generator_from_training_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    volumes = rng.uniform(-1, 1, (4, 16, 16, 16)).astype(np.float32)
    result = train_gan(volumes, np.array([0, 1, 2, 0]), CLASSES, SETTINGS, tmp_path, log=io.StringIO(), device="cpu")
    loaded, settings, classes = load_generator(tmp_path / CHECKPOINT_NAME)
    assert classes == CLASSES and settings == SETTINGS
    a, _ = synthesize(result.gan.generator, CLASSES, 1, seed=0)
    b, _ = synthesize(loaded, CLASSES, 1, seed=0)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_load_generator_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="generator file not found"):
        load_generator(tmp_path / "missing.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="expected a brainaug generator"):
        load_generator(tmp_path / "other.pt")


def test_recalibrate_batchnorm_copies_and_rewrites_running_stats(generator):
    from brainaug.gan.synthesize import recalibrate_batchnorm

    before = {k: v.clone() for k, v in generator.state_dict().items()}
    calibrated = recalibrate_batchnorm(generator, len(CLASSES), seed=0, n_batches=4)
    assert not calibrated.training
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())  # original untouched
    bn = calibrated.stem[1]
    assert not torch.allclose(bn.running_mean, generator.stem[1].running_mean)
    assert bn.num_batches_tracked.item() == 4 and bn.momentum == 0.1
