"""Conditioning of the alpha-GAN: auxiliary-classifier critic, class-conditional code critic, output bases, monitor."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from brainaug.device import num_threads
from brainaug.gan.monitor import MONITOR_COLUMNS, SampleMonitor, score_samples
from brainaug.gan.networks import CodeDiscriminator, Discriminator, Generator, build_alpha_gan
from brainaug.gan.settings import GANSettings
from brainaug.gan.synthesize import load_generator, save_generator, synthesize
from brainaug.gan.train import alpha_gan_step, make_optimizers, train_gan

CLASSES = ["CN", "MCI", "AD"]
TINY = {
    "image_size": 16, "width": 4, "latent_dim": 8, "batch_size": 3, "iterations": 4,
    "checkpoint_every": 2, "log_every": 4, "monitor_every": 2, "precision": "fp32", "seed": 3,
}


def _data(n: int = 9, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    labels = np.arange(n) % 3
    volumes = np.tanh(rng.normal(size=(n, size, size, size)) * 0.3 + labels[:, None, None, None] - 1)
    return volumes.astype(np.float32), labels


def test_auxiliary_critic_has_a_location_aware_class_head():
    x, y = torch.randn(2, 1, 16, 16, 16), torch.tensor([0, 2])
    critic, logits = Discriminator(16, 4, 3, auxiliary=True).scores(x, y)
    assert critic.shape == (2,) and logits.shape == (2, 3)
    # The head reads the whole 4^3 feature map, not a spatial mean.
    assert Discriminator(16, 4, 3, auxiliary=True).classifier.in_features == 8 * 4**3
    assert Discriminator(16, 4, 3).scores(x, y)[1] is None


def test_class_conditional_code_critic_needs_and_uses_the_label():
    cd = CodeDiscriminator(8, 32, n_classes=3).eval()
    z = torch.randn(4, 8)
    with pytest.raises(ValueError, match="without labels"):
        cd(z)
    assert not torch.allclose(cd(z, torch.zeros(4, dtype=torch.long)), cd(z, torch.full((4,), 2)))


@pytest.mark.parametrize("base", ["mean", "class_mean"])
def test_generator_starts_from_its_base_volumes(base, tmp_path):
    volumes, labels = _data()
    g = Generator(16, 4, 8, 3, output_base=base).eval()
    g.set_output_base(volumes, labels)
    y = torch.tensor([0, 1, 2])
    out = g(torch.randn(3, 8), y)[:, 0].detach().numpy()
    for k in range(3):
        members = labels == k if base == "class_mean" else np.ones_like(labels, dtype=bool)
        expected = np.clip(volumes[members].mean(0), -0.999, 0.999)
        np.testing.assert_allclose(out[k], expected, atol=1e-5)
    settings = GANSettings.from_config({**TINY, "output_base": base})
    save_generator(tmp_path / "g.pt", g, settings, CLASSES)
    loaded, _, _ = load_generator(tmp_path / "g.pt")
    assert torch.equal(loaded.base_logit, g.base_logit)


def test_class_mean_base_needs_every_class():
    volumes, labels = _data()
    g = Generator(16, 4, 8, 3, output_base="class_mean")
    with pytest.raises(ValueError, match="class 2 has no training volume"):
        g.set_output_base(volumes[labels < 2], labels[labels < 2])
    with pytest.raises(ValueError, match="output_base 'none'"):
        Generator(16, 4, 8, 3).set_output_base(volumes, labels)


@pytest.mark.parametrize("conditioning", ["projection", "auxiliary"])
def test_step_reports_class_losses_only_with_the_auxiliary_head(conditioning):
    settings = GANSettings.from_config({**TINY, "conditioning": conditioning})
    gan = build_alpha_gan(settings, 3)
    volumes, labels = _data()
    rng = torch.Generator().manual_seed(0)
    parts = alpha_gan_step(gan, make_optimizers(gan, settings), torch.from_numpy(volumes[:3, None]),
                           torch.from_numpy(labels[:3]), rng, lambda_class=2.0)
    assert all(torch.isfinite(v) for v in parts.values())
    if conditioning == "auxiliary":
        # Cross-entropy of an untrained head on 3 classes is near log 3, times lambda.
        assert parts["d_class"].item() == pytest.approx(2 * np.log(3), rel=0.5)
        assert parts["eg_class"].item() > 0
    else:
        assert parts["d_class"].item() == 0 and parts["eg_class"].item() == 0


def test_monitor_scores_the_judge_and_copies():
    volumes, labels = _data()
    perfect = score_samples(volumes, labels, volumes, 1.0, judge=lambda v: labels, seed=0)
    assert perfect["judge_balanced_accuracy"] == 1.0
    # samples that are training volumes: copies (0 up to the rounding of |q|² + |r|² - 2 q.r)
    assert perfect["nn_ratio"] == pytest.approx(0.0, abs=1e-6)
    wrong = score_samples(volumes, labels, volumes, 1.0, judge=lambda v: (labels + 1) % 3, seed=0)
    assert wrong["judge_balanced_accuracy"] == 0.0


def test_monitor_columns_fill_on_schedule_and_survive_resume(tmp_path):
    """Logged every monitor_every iterations, NaN between; a resumed run logs the same numbers."""
    volumes, labels = _data()
    settings = GANSettings.from_config({**TINY, "conditioning": "auxiliary", "output_base": "mean"})

    def monitor() -> SampleMonitor:
        return SampleMonitor(volumes, CLASSES, judge=lambda v: np.zeros(len(v), dtype=int), n_per_class=2, seed=9)

    with num_threads(1):
        straight = train_gan(volumes, labels, CLASSES, settings, tmp_path / "a", log=io.StringIO(), device="cpu",
                             monitor=monitor())
        train_gan(volumes, labels, CLASSES, settings.replace(iterations=2), tmp_path / "b", log=io.StringIO(),
                  device="cpu", monitor=monitor())
        resumed = train_gan(volumes, labels, CLASSES, settings, tmp_path / "b", log=io.StringIO(), device="cpu",
                            monitor=monitor())
    scored = straight.losses.dropna(subset=["nn_ratio"])
    assert scored["iteration"].tolist() == [2, 4]
    assert (scored["judge_balanced_accuracy"] == 1 / 3).all()  # a judge that always says CN
    cols = ["iteration", *MONITOR_COLUMNS]
    assert resumed.losses[cols].equals(straight.losses[cols])


def test_synthesize_from_a_class_mean_generator_keeps_the_class_order():
    volumes, labels = _data()
    g = Generator(16, 4, 8, 3, output_base="class_mean")
    g.set_output_base(volumes, labels)
    out, out_labels = synthesize(g, CLASSES, 2, seed=0)
    assert out_labels.tolist() == [0, 0, 1, 1, 2, 2]
    means = [out[out_labels == k].mean() for k in range(3)]
    assert means[0] < means[1] < means[2]  # the toy classes differ in brightness


def test_a_generator_saved_before_conditioning_options_loads_as_it_was_trained(tmp_path):
    """Old files lack the conditioning keys: they were projection / no base, not today's default."""
    settings = GANSettings.from_config({**TINY, "conditioning": "projection", "output_base": "none"})
    g = Generator(16, 4, 8, 3)
    old = {k: v for k, v in settings.to_dict().items() if k not in ("conditioning", "output_base", "lambda_class")}
    torch.save({"generator": g.state_dict(), "settings": old, "classes": CLASSES}, tmp_path / "old.pt")
    loaded, loaded_settings, _ = load_generator(tmp_path / "old.pt")
    assert loaded_settings.conditioning == "projection" and loaded_settings.output_base == "none"
    assert loaded.output_base == "none"
