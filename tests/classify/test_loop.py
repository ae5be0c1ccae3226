"""Equal optimizer-step budgets, BatchNorm statistics from real training volumes, and which epochs count for selection."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from brainaug.classify.loop import batch_stream, recalibrate_batchnorm, train_classifier
from brainaug.classify.settings import ClassifierSettings
from brainaug.strategies import Strategy

CLASSES = ["CN", "MCI", "AD"]


def test_batch_stream_sees_every_volume_equally_and_never_one_alone():
    stream = batch_stream(10, 4, torch.Generator().manual_seed(0))
    batches = [next(stream) for _ in range(25)]  # 100 draws = 10 full shuffles
    assert all(len(b) == 4 for b in batches)
    counts = np.bincount(np.concatenate(batches), minlength=10)
    assert counts.tolist() == [10] * 10
    assert len(next(batch_stream(3, 8, torch.Generator().manual_seed(0)))) == 3


def test_recalibration_sets_running_stats_to_the_given_volumes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(1, 2, 1), nn.BatchNorm3d(2), nn.Dropout(0.5))
    model[1].running_mean.fill_(5.0)
    volumes = np.random.default_rng(0).normal(3.0, 2.0, (9, 4, 4, 4)).astype(np.float32)
    model.train()
    recalibrate_batchnorm(model, volumes, batch_size=4, device=torch.device("cpu"))
    with torch.no_grad():
        features = model[0](torch.from_numpy(volumes).unsqueeze(1))
    expected = features.mean(dim=(0, 2, 3, 4))
    assert torch.allclose(model[1].running_mean, expected, atol=1e-4)
    assert model.training and model[1].momentum == 0.1  # mode and momentum restored


def _toy(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = (rng.normal(0, 0.1, (n, 16, 16, 16)) + y[:, None, None, None]).astype(np.float32)
    return x, y


@pytest.mark.parametrize("bn_statistics", ["real_train", "running"])
def test_a_larger_training_set_gets_the_same_number_of_steps(bn_statistics):
    settings = ClassifierSettings.from_config(
        dict(widths=(2, 2, 2, 2, 2), max_epochs=3, min_epochs=3, batch_size=4, bn_statistics=bn_statistics)
    )
    real_x, real_y = _toy(10)
    syn_x, syn_y = _toy(10, seed=1)
    val_x, val_y = _toy(6, seed=2)
    plain = train_classifier(real_x, real_y, val_x, val_y, Strategy("standard"), settings, CLASSES, seed=0)
    mixed = train_classifier(
        np.concatenate([real_x, syn_x]), np.concatenate([real_y, syn_y]), val_x, val_y,
        Strategy("gan50", synthetic_share=0.5), settings, CLASSES, seed=0, real_train_x=real_x,
    )
    assert plain.history["steps"].tolist() == [3, 6, 9]  # ceil(10 / 4) per epoch
    assert mixed.history["steps"].tolist() == plain.history["steps"].tolist()


def test_selected_model_carries_the_real_training_statistics():
    settings = ClassifierSettings.from_config(
        dict(widths=(2, 2, 2, 2, 2), max_epochs=2, batch_size=4, input_centering="none")
    )
    real_x, real_y = _toy(8)
    shifted = real_x + np.float32(5.0)  # stands in for synthetic volumes of another intensity
    val_x, val_y = _toy(6, seed=2)
    out = train_classifier(
        np.concatenate([real_x, shifted]), np.concatenate([real_y, real_y]), val_x, val_y,
        Strategy("gan50", synthetic_share=0.5), settings, CLASSES, seed=0, real_train_x=real_x,
    )
    first_bn = next(m for m in out.model.modules() if isinstance(m, nn.BatchNorm3d))
    with torch.no_grad():
        conv = out.model.convolutions[0][0]
        expected = conv(torch.from_numpy(real_x).unsqueeze(1)).mean(dim=(0, 2, 3, 4))
    assert torch.allclose(first_bn.running_mean, expected, atol=1e-3)


def test_centred_model_subtracts_the_mean_real_training_volume_and_keeps_it():
    settings = ClassifierSettings.from_config(
        dict(widths=(2, 2, 2, 2, 2), max_epochs=1, batch_size=4, input_centering="train_mean")
    )
    real_x, real_y = _toy(8)
    syn_x = real_x + np.float32(3.0)
    val_x, val_y = _toy(6, seed=2)
    out = train_classifier(
        np.concatenate([real_x, syn_x]), np.concatenate([real_y, real_y]), val_x, val_y,
        Strategy("gan50", synthetic_share=0.5), settings, CLASSES, seed=0, real_train_x=real_x,
    )
    reference = out.state_dict["reference"][0, 0].numpy()
    np.testing.assert_allclose(reference, real_x.mean(axis=0), atol=1e-5)
    with torch.no_grad():
        x = torch.from_numpy(val_x[:2]).unsqueeze(1)
        assert torch.equal(out.model(x), out.model.net(x - out.model.reference))


def test_centred_augmentation_moves_the_deviation_not_the_brain(monkeypatch):
    """What the network sees under augmentation is the augmented deviation from the reference."""
    import brainaug.classify.loop as loop

    seen: list[torch.Tensor] = []
    original = loop.CenteredInput.forward

    def spy(self, x):
        if self.training:
            seen.append((x - self.reference).detach().clone())
        return original(self, x)

    monkeypatch.setattr(loop.CenteredInput, "forward", spy)
    settings = ClassifierSettings.from_config(
        dict(widths=(2, 2, 2, 2, 2), max_epochs=1, batch_size=4, input_centering="train_mean")
    )
    # Brains that share one anatomy (a sphere on background -1) and differ by faint noise.
    r = np.arange(16) - 7.5
    sphere = (r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2) <= 25
    rng = np.random.default_rng(0)
    real_x = (np.where(sphere, 0.5, -1.0) + rng.normal(0, 0.01, (8, 16, 16, 16))).astype(np.float32)
    real_y = np.arange(8) % 3
    val_x, val_y = real_x[:6], real_y[:6]
    train_classifier(real_x, real_y, val_x, val_y, Strategy("aug", classic_augmentation=True), settings, CLASSES, seed=0)
    deviation = torch.from_numpy(real_x - real_x.mean(axis=0))
    # Each seen input is a roll/rotation of one deviation: same total energy up to interpolation,
    # where a shifted brain minus an unshifted reference would add the brain's edges.
    energies = torch.stack([b.pow(2).sum(dim=(1, 2, 3, 4)) for b in seen]).flatten()
    assert energies.max() <= 1.05 * deviation.pow(2).sum(dim=(1, 2, 3)).max()


def test_augmentation_works_in_mm_on_the_given_or_template_grid(monkeypatch):
    """The augmenter gets the voxel size: given, else the template grid's; a size without one fails."""
    import brainaug.classify.loop as loop

    made = []
    original = loop.RandomStudyAugmentation.physical

    def spy(spacing, max_shift_mm, **kwargs):
        aug = original(spacing, max_shift_mm, **kwargs)
        made.append(aug)
        return aug

    monkeypatch.setattr(loop.RandomStudyAugmentation, "physical", staticmethod(spy))
    settings = ClassifierSettings.from_config(
        dict(widths=(2, 2, 2, 2, 2), max_epochs=1, batch_size=4, augment_rotation="bilinear", augment_steps="roll")
    )
    x, y = _toy(8)
    aug = Strategy("aug", classic_augmentation=True)
    train_classifier(x, y, x, y, aug, settings, CLASSES, seed=0)
    train_classifier(x, y, x, y, aug, settings, CLASSES, seed=0, spacing_mm=(1.0, 2.0, 5.0))
    assert made[0].spacing == pytest.approx((9.5, 11.75, 10.15625))  # the 16^3 template grid
    assert made[0].max_shift == (1, 1, 1)
    assert made[1].spacing == (1.0, 2.0, 5.0) and made[1].max_shift == (10, 5, 2)  # 10.5 mm
    assert (made[0].rotation, made[0].steps) == ("bilinear", "roll")
    odd = np.zeros((8, 12, 12, 12), dtype=np.float32)
    with pytest.raises(ValueError, match=r"needs the voxel size of 12\^3 volumes: pass spacing_mm"):
        train_classifier(odd, y, odd, y, aug, settings, CLASSES, seed=0)


def _noise(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, 16, 16, 16)).astype(np.float32), np.arange(n) % 3


def test_epochs_count_for_selection_only_once_the_training_set_is_learned():
    """Labels unrelated to the volumes: the validation loss is lowest at epoch 1, while the
    network is still at chance, and rises as it memorises. Counting every epoch tests that
    untrained model; counting from 0.6 training accuracy tests the best epoch after it, and
    early stopping waits for it."""
    base = dict(widths=(4, 8, 8, 8, 8), pooling="average", pooled_blocks=3, dropout=0.0, lr=3e-2,
                batch_size=4, selection="loss", max_epochs=12, min_epochs=1, patience=2)
    x, y = _noise(12, seed=0)
    val_x, val_y = _noise(6, seed=1)
    picked = {}
    for threshold in (0.0, 0.6):
        settings = ClassifierSettings.from_config({**base, "selection_from_train_accuracy": threshold})
        out = train_classifier(x, y, val_x, val_y, Strategy("standard"), settings, CLASSES, seed=0)
        h = out.history.set_index("epoch")
        first = int(h.index[h["train_acc"] >= threshold].min())
        assert out.selection_from_epoch == first
        counted = h.loc[first:]
        assert out.best_epoch == int(counted["val_loss"].idxmin())
        assert out.epochs_run == min(out.best_epoch + 2, 12)  # patience 2, counted from `first`
        picked[threshold] = (first, out.best_epoch)
    assert picked[0.0] == (1, 1)  # the untrained model, as before this setting
    first, best = picked[0.6]
    assert first > 1 and best >= first


def test_a_classifier_that_never_learns_is_tested_at_its_best_epoch_and_says_so():
    settings = ClassifierSettings.from_config(dict(
        widths=(2, 2, 2, 2, 2), pooling="average", pooled_blocks=3, dropout=0.0, batch_size=4,
        selection="loss", max_epochs=4, min_epochs=1, patience=1, selection_from_train_accuracy=1.0,
    ))
    x, y = _noise(12, seed=0)  # labels unrelated to the volumes: no epoch fits them all
    val_x, val_y = _noise(6, seed=1)
    log = io.StringIO()
    out = train_classifier(x, y, val_x, val_y, Strategy("standard"), settings, CLASSES, seed=0, log=log)
    assert out.selection_from_epoch is None
    assert out.epochs_run == 4  # no early stop while no epoch counts
    assert out.best_epoch == int(out.history.set_index("epoch")["val_loss"].idxmin())
    assert "training accuracy never reached 1 in 4 epochs" in log.getvalue()
