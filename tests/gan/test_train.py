"""Training loop: kill/resume exactness, divergence handling, input checks."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import brainaug.gan.train as train_module
from brainaug.device import num_threads
from brainaug.gan.checkpoint import CHECKPOINT_NAME, load_checkpoint
from brainaug.gan.settings import GANSettings
from brainaug.gan.train import HISTORY_COLUMNS, LOSS_COLUMNS, TrainingDivergedError, train_gan

CLASSES = ["CN", "MCI", "AD"]
TINY = {
    "image_size": 16, "width": 4, "latent_dim": 8, "batch_size": 2, "iterations": 8,
    "checkpoint_every": 2, "log_every": 4, "precision": "fp32", "seed": 5,
}


def _data(n: int = 9, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    volumes = np.tanh(rng.normal(size=(n, size, size, size))).astype(np.float32)
    labels = np.arange(n) % 3
    return volumes, labels


def _state(result) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value
        for name, module in result.gan.modules().items()
        for key, value in module.state_dict().items()
    }


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    """A run SIGKILLed after its iteration-6 checkpoint, then resumed, ends bit-identical."""
    volumes, labels = _data()
    np.save(tmp_path / "volumes.npy", volumes)
    np.save(tmp_path / "labels.npy", labels)
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        import numpy as np, torch
        torch.set_num_threads(1)
        from brainaug.gan.settings import GANSettings
        from brainaug.gan.train import train_gan
        def kill(step, losses):
            if step == 7:  # after the checkpoint of iteration 6, before that of 8
                os.kill(os.getpid(), signal.SIGKILL)
        train_gan(np.load({str(tmp_path / 'volumes.npy')!r}), np.load({str(tmp_path / 'labels.npy')!r}),
                  {CLASSES!r}, GANSettings.from_config({json.dumps(TINY)}),
                  {str(tmp_path / 'killed')!r}, log=sys.stdout, device="cpu", callback=kill)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert load_checkpoint(tmp_path / "killed" / CHECKPOINT_NAME)["step"] == 6

    settings = GANSettings.from_config(TINY)
    with num_threads(1):
        resumed = train_gan(volumes, labels, CLASSES, settings, tmp_path / "killed", log=io.StringIO(), device="cpu")
        straight = train_gan(volumes, labels, CLASSES, settings, tmp_path / "straight", log=io.StringIO(), device="cpu")
    assert resumed.resumed_from == 6 and straight.resumed_from == 0
    a, b = _state(resumed), _state(straight)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    cols = [c for c in LOSS_COLUMNS if c != "seconds"]
    assert resumed.losses[cols].equals(straight.losses[cols])
    assert list(resumed.losses["iteration"]) == list(range(1, 9))


def test_losses_checkpoint_contents_and_rerun_is_a_noop(tmp_path):
    volumes, labels = _data()
    settings = GANSettings.from_config({**TINY, "iterations": 3})
    log = io.StringIO()
    result = train_gan(volumes, labels, CLASSES, settings, tmp_path, log=log, device="cpu")
    assert list(result.losses.columns) == list(HISTORY_COLUMNS)
    losses = result.losses[list(LOSS_COLUMNS)]
    assert len(losses) == 3 and np.isfinite(losses.drop(columns="seconds").to_numpy()).all()
    assert result.losses[list(HISTORY_COLUMNS[len(LOSS_COLUMNS):])].isna().all().all()  # no monitor given
    assert "iter 3/3" in log.getvalue()
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert state["step"] == 3 and state["classes"] == CLASSES
    assert GANSettings.from_dict(state["settings"]) == settings
    assert set(state["models"]) == {"encoder", "generator", "discriminator", "code_discriminator"}
    before = _state(result)
    again = train_gan(volumes, labels, CLASSES, settings, tmp_path, log=io.StringIO(), device="cpu")
    assert again.resumed_from == 3 and len(again.losses) == 3
    assert all(torch.equal(before[k], v) for k, v in _state(again).items())


def test_resume_takes_architecture_from_checkpoint(tmp_path):
    volumes, labels = _data()
    train_gan(volumes, labels, CLASSES, GANSettings.from_config({**TINY, "iterations": 2}), tmp_path,
              log=io.StringIO(), device="cpu")
    log = io.StringIO()
    more = GANSettings.from_config({**TINY, "iterations": 3, "width": 8})
    result = train_gan(volumes, labels, CLASSES, more, tmp_path, log=log, device="cpu")
    assert result.settings.width == 4 and result.settings.iterations == 3
    assert "keeping the checkpoint's values for width" in log.getvalue()


def test_resume_with_other_classes_is_refused(tmp_path):
    volumes, labels = _data()
    settings = GANSettings.from_config({**TINY, "iterations": 2})
    train_gan(volumes, labels, CLASSES, settings, tmp_path, log=io.StringIO(), device="cpu")
    with pytest.raises(ValueError, match="trained for classes"):
        train_gan(volumes, labels, ["CN", "AD", "MCI"], settings, tmp_path, log=io.StringIO(), device="cpu")


def test_checkpoint_of_other_networks_is_refused_naming_the_file(tmp_path):
    volumes, labels = _data()
    settings = GANSettings.from_config({**TINY, "iterations": 2})
    train_gan(volumes, labels, CLASSES, settings, tmp_path, log=io.StringIO(), device="cpu")
    path = tmp_path / CHECKPOINT_NAME
    state = torch.load(path, weights_only=True)
    state["models"]["generator"] = {f"old.{k}": v for k, v in state["models"]["generator"].items()}
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"checkpoint\.pt: the saved generator does not fit .* delete the file"):
        train_gan(volumes, labels, CLASSES, settings.replace(iterations=3), tmp_path, log=io.StringIO(), device="cpu")


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    volumes, labels = _data()
    settings = GANSettings.from_config({**TINY, "iterations": 6})
    real_step = train_module.alpha_gan_step
    calls = {"n": 0}

    def flaky_step(*args, **kwargs):
        out = real_step(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            out["d_loss"] = torch.tensor(float("nan"))
        return out

    monkeypatch.setattr(train_module, "alpha_gan_step", flaky_step)
    with pytest.raises(TrainingDivergedError, match=r"iteration 3: d_loss = nan.*iteration 2\) is kept"):
        train_gan(volumes, labels, CLASSES, settings, tmp_path, log=io.StringIO(), device="cpu")
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["models"]["generator"].values() if v.is_floating_point())


def test_nonfinite_weights_are_never_checkpointed(tmp_path, monkeypatch):
    volumes, labels = _data()
    settings = GANSettings.from_config({**TINY, "iterations": 4, "checkpoint_every": 1})
    real_step = train_module.alpha_gan_step
    calls = {"n": 0}

    def poisoning_step(gan, *args, **kwargs):
        out = real_step(gan, *args, **kwargs)  # losses of this step stay finite
        calls["n"] += 1
        if calls["n"] == 2:
            with torch.no_grad():
                gan.generator.stem[0].weight[0, 0, 0, 0, 0] = float("inf")
        return out

    monkeypatch.setattr(train_module, "alpha_gan_step", poisoning_step)
    with pytest.raises(TrainingDivergedError, match=r"by iteration 2: generator\.stem\.0\.weight holds NaN/Inf"):
        train_gan(volumes, labels, CLASSES, settings, tmp_path, log=io.StringIO(), device="cpu")
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["step"] == 1


def test_nan_before_first_checkpoint_says_none_was_written(tmp_path):
    volumes, labels = _data()
    settings = GANSettings.from_config({**TINY, "iterations": 4}).replace(lr=float("inf"))  # beyond the schema on purpose
    with pytest.raises(TrainingDivergedError, match="iteration 1: .* no checkpoint had been written yet"):
        train_gan(volumes, labels, CLASSES, settings, tmp_path, log=io.StringIO(), device="cpu")
    assert not (tmp_path / CHECKPOINT_NAME).exists()


@pytest.mark.parametrize(
    ("volumes", "labels", "error", "match"),
    [
        (np.zeros((4, 8, 8, 8), np.float32), np.zeros(4, int), ValueError, r"expected shape \(N, 16, 16, 16\)"),
        (np.zeros((4, 16, 16, 16), np.float32), np.zeros(3, int), ValueError, r"labels: expected shape \(4,\)"),
        (np.zeros((4, 16, 16, 16), np.float32), np.full(4, 3), ValueError, r"expected values in \[0, 2\]"),
        (np.zeros((4, 16, 16, 16), np.float32), np.zeros(4, float), TypeError, "integer class indices"),
        (np.full((4, 16, 16, 16), 2.0, np.float32), np.zeros(4, int), ValueError, r"intensities in \[-1, 1\]"),
        ([[0.0]], np.zeros(1, int), TypeError, "expected a numpy array"),
    ],
)
def test_bad_inputs_are_rejected(tmp_path, volumes, labels, error, match):
    with pytest.raises(error, match=match):
        train_gan(volumes, labels, CLASSES, GANSettings.from_config(TINY), tmp_path, log=io.StringIO(), device="cpu")


def test_bf16_step_runs_and_stays_finite(tmp_path):
    volumes, labels = _data()
    settings = GANSettings.from_config({**TINY, "iterations": 3, "precision": "bf16"})
    result = train_gan(volumes, labels, CLASSES, settings, tmp_path, log=io.StringIO(), device="cpu")
    assert np.isfinite(result.losses[list(LOSS_COLUMNS)].drop(columns="seconds").to_numpy()).all()
