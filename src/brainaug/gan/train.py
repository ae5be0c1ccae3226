"""Training loop of the conditional alpha-GAN, resumable from atomic checkpoints.

One iteration (:func:`alpha_gan_step`) is one E/G step, one D step and one CD
step on one batch, following Kwon et al. 2019 without the reference's two bugs
(its generator optimizer stepped twice per iteration; its CD step
back-propagated through a graph that had already been freed). The D step
re-encodes and re-generates with the freshly updated E and G (without
gradients), and the CD step uses those codes, as the reference intended.

Everything random in the loop (batch indices, z, the GP mixing weights) is
drawn from one seeded :class:`torch.Generator` whose state is checkpointed, so
a run that is killed and resumed ends with exactly the weights of an
uninterrupted run (on CPU in fp32; GPU kernels may not be bit-reproducible).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import record_function
from tqdm.auto import tqdm

import brainaug
from brainaug.device import (
    adam,
    autocast,
    configure_backends,
    pick_device,
    resolve_precision,
    to_channels_last,
)
from brainaug.gan.checkpoint import (
    CHECKPOINT_NAME,
    capture_rng_state,
    load_checkpoint,
    load_weights,
    restore_rng_state,
    save_checkpoint,
)
from brainaug.gan.losses import (
    code_discriminator_loss,
    discriminator_loss,
    encoder_generator_loss,
    gradient_penalty,
)
from brainaug.gan.monitor import MONITOR_COLUMNS
from brainaug.gan.networks import AlphaGAN, build_alpha_gan
from brainaug.gan.settings import GANSettings

__all__ = [
    "TrainingDivergedError",
    "TrainResult",
    "Optimizers",
    "LOSS_COLUMNS",
    "HISTORY_COLUMNS",
    "make_optimizers",
    "alpha_gan_step",
    "train_gan",
]

#: Columns of the loss history (``losses.tsv``), in order.
LOSS_COLUMNS: tuple[str, ...] = (
    "iteration",
    "eg_loss",
    "eg_l1",
    "eg_adv",
    "eg_code",
    "eg_class",
    "d_loss",
    "d_wasserstein",
    "d_gp",
    "d_class",
    "cd_loss",
    "cd_wasserstein",
    "cd_gp",
    "seconds",
)


#: Columns of ``losses.tsv``: the losses, then the sample monitor's numbers.
HISTORY_COLUMNS: tuple[str, ...] = LOSS_COLUMNS + MONITOR_COLUMNS


def _history_rows(state: dict[str, Any]) -> list[list[float]]:
    """The checkpoint's loss history in ``HISTORY_COLUMNS`` order (columns it lacks are NaN)."""
    saved = list(state.get("loss_columns", LOSS_COLUMNS))
    rows = []
    for row in state.get("losses", []):
        named = dict(zip(saved, row))
        rows.append([float(named.get(c, math.nan)) for c in HISTORY_COLUMNS])
    return rows


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Optimizers:
    """One Adam per network, as in the reference."""

    encoder: torch.optim.Optimizer
    generator: torch.optim.Optimizer
    discriminator: torch.optim.Optimizer
    code_discriminator: torch.optim.Optimizer

    def as_dict(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "encoder": self.encoder,
            "generator": self.generator,
            "discriminator": self.discriminator,
            "code_discriminator": self.code_discriminator,
        }


@dataclass
class TrainResult:
    """What :func:`train_gan` returns.

    Attributes:
        gan: the trained networks (on the training device, train mode).
        settings: the settings actually used (from the checkpoint on resume).
        classes: class names, index = label.
        losses: one row per iteration, columns :data:`LOSS_COLUMNS`.
        resumed_from: the step training resumed at (0 for a fresh run).
        device: the training device.
        checkpoint: path of the final checkpoint.
    """

    gan: AlphaGAN
    settings: GANSettings
    classes: list[str]
    losses: pd.DataFrame
    resumed_from: int
    device: torch.device
    checkpoint: Path


def make_optimizers(gan: AlphaGAN, settings: GANSettings, fused: bool = True) -> Optimizers:
    """Adam (``settings.lr``, ``settings.betas``) for each of the four networks.

    ``fused`` uses PyTorch's fused Adam kernel where available (see
    :func:`brainaug.device.adam`); the benchmark's plain iteration turns it off.
    """
    def make(module: nn.Module) -> torch.optim.Optimizer:
        return adam(module.parameters(), fused=fused, lr=settings.lr, betas=tuple(settings.betas))

    return Optimizers(**{name: make(module) for name, module in gan.modules().items()})


def _train_only(gan: AlphaGAN, *names: str) -> None:
    """Let gradients flow into the parameters of ``names`` only (saves the others' grads)."""
    for name, module in gan.modules().items():
        module.requires_grad_(name in names)


def alpha_gan_step(
    gan: AlphaGAN,
    optimizers: Optimizers,
    x: torch.Tensor,
    y: torch.Tensor,
    rng: torch.Generator,
    lambda_gp: float = 10.0,
    lambda_l1: float = 10.0,
    amp_dtype: torch.dtype | None = None,
    lambda_class: float = 1.0,
) -> dict[str, torch.Tensor]:
    """One alpha-GAN iteration: an E/G step, a D step and a CD step on the batch ``(x, y)``.

    Args:
        gan: the four networks, in train mode, on ``x.device``.
        optimizers: their optimizers.
        x: ``(B, 1, S, S, S)`` real volumes in [-1, 1] (channels_last_3d if the
            networks are).
        y: ``(B,)`` int64 labels; fakes are generated for the same labels.
        rng: generator for z and the GP mixing weights (CPU or ``x.device``).
        lambda_gp: weight of every gradient penalty.
        lambda_l1: weight of the L1 reconstruction term.
        amp_dtype: autocast dtype (``torch.bfloat16``) or None for fp32.
        lambda_class: weight of the auxiliary-classifier cross-entropies when D
            has that head (``conditioning: auxiliary``): D learns the diagnosis
            of real volumes, E/G are pushed to make G(z, y) and G(E(x), y)
            read as y.

    Returns:
        Detached scalar tensors: ``eg_loss, eg_l1, eg_adv, eg_code, eg_class,
        d_loss, d_wasserstein, d_gp, d_class, cd_loss, cd_wasserstein, cd_gp``
        (the class terms are 0 without the auxiliary head).
    """
    E, G, D, CD = gan.encoder, gan.generator, gan.discriminator, gan.code_discriminator
    batch, latent, device = x.shape[0], G.latent_dim, x.device

    def prior() -> torch.Tensor:
        return torch.randn(batch, latent, generator=rng, device=rng.device).to(device)

    zero = torch.zeros((), device=device)

    # ---- encoder / generator -------------------------------------------------
    with record_function("alpha_gan.eg_step"):
        _train_only(gan, "encoder", "generator")
        optimizers.encoder.zero_grad(set_to_none=True)
        optimizers.generator.zero_grad(set_to_none=True)
        with autocast(device, amp_dtype):
            code = E(x)
            x_rec = G(code, y)
            x_rand = G(prior(), y)
            d_rec, logits_rec = D.scores(x_rec, y)
            d_rand, logits_rand = D.scores(x_rand, y)
            loss_eg, parts_eg = encoder_generator_loss(x, x_rec, d_rec, d_rand, CD(code, y), lambda_l1)
            eg_class = zero
            if logits_rand is not None:
                eg_class = lambda_class * (F.cross_entropy(logits_rand, y) + F.cross_entropy(logits_rec, y))
                loss_eg = loss_eg + eg_class
        loss_eg.backward()
        optimizers.encoder.step()
        optimizers.generator.step()

    # ---- image discriminator --------------------------------------------------
    def critic(v: torch.Tensor) -> torch.Tensor:
        return D(v, y)

    with record_function("alpha_gan.d_step"):
        _train_only(gan, "discriminator")
        with torch.no_grad(), autocast(device, amp_dtype):
            code = E(x).float()
            x_rec = G(code, y)
            x_rand = G(prior(), y)
        optimizers.discriminator.zero_grad(set_to_none=True)
        with autocast(device, amp_dtype):
            gp_rand = gradient_penalty(critic, x, x_rand, lambda_gp, rng)
            gp_rec = gradient_penalty(critic, x, x_rec, lambda_gp, rng)
            d_real, logits_real = D.scores(x, y)
            loss_d, parts_d = discriminator_loss(d_real, D(x_rec, y), D(x_rand, y), gp_rand, gp_rec)
            d_class = zero
            if logits_real is not None:
                # Real volumes only: a head that also learnt the labels of
                # fakes would reward the generator for anything it makes.
                d_class = lambda_class * F.cross_entropy(logits_real, y)
                loss_d = loss_d + d_class
        loss_d.backward()
        optimizers.discriminator.step()

    # ---- code discriminator (fp32: a small MLP) --------------------------------
    def code_critic(c: torch.Tensor) -> torch.Tensor:
        # y is read only by a class-conditional code critic (auxiliary conditioning).
        return CD(c, y)

    with record_function("alpha_gan.cd_step"):
        _train_only(gan, "code_discriminator")
        optimizers.code_discriminator.zero_grad(set_to_none=True)
        z = prior()
        gp_code = gradient_penalty(code_critic, code, z, lambda_gp, rng)
        loss_cd, parts_cd = code_discriminator_loss(code_critic(code), code_critic(z), gp_code)
        loss_cd.backward()
        optimizers.code_discriminator.step()

    parts_eg["eg_class"] = eg_class.detach().float()
    parts_d["d_class"] = d_class.detach().float()
    _train_only(gan, "encoder", "generator", "discriminator", "code_discriminator")
    return {
        "eg_loss": loss_eg.detach(),
        **parts_eg,
        "d_loss": loss_d.detach(),
        **parts_d,
        "cd_loss": loss_cd.detach(),
        **parts_cd,
    }


def _check_inputs(volumes: np.ndarray, labels: np.ndarray, classes: list[str], settings: GANSettings) -> None:
    if not isinstance(volumes, np.ndarray):
        raise TypeError(f"volumes: expected a numpy array (N, S, S, S), got {type(volumes).__name__}")
    s = settings.image_size
    if volumes.ndim != 4 or volumes.shape[1:] != (s, s, s):
        raise ValueError(f"volumes: expected shape (N, {s}, {s}, {s}) for image_size {s}, got {volumes.shape}")
    if volumes.shape[0] < 1:
        raise ValueError("volumes: expected at least one training volume, got 0")
    labels = np.asarray(labels)
    if labels.shape != (volumes.shape[0],):
        raise ValueError(f"labels: expected shape ({volumes.shape[0]},) to match volumes, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    if len(classes) < 1:
        raise ValueError("classes: expected at least one class name, got an empty list")
    if labels.min() < 0 or labels.max() >= len(classes):
        raise ValueError(
            f"labels: expected values in [0, {len(classes) - 1}] for classes {classes}, "
            f"got min {labels.min()} max {labels.max()}"
        )
    lo, hi = float(np.min(volumes)), float(np.max(volumes))
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1.0 - 1e-4 or hi > 1.0 + 1e-4:
        raise ValueError(f"volumes: expected intensities in [-1, 1] (the generator ends in tanh), got [{lo}, {hi}]")


def _resume_settings(saved: GANSettings, requested: GANSettings, log: TextIO) -> GANSettings:
    """Architecture and optimisation from the checkpoint; run length and logging from the request."""
    run_keys = ("iterations", "checkpoint_every", "log_every", "monitor_every", "n_synthetic_per_class",
                "memorization_threshold")
    merged = saved.replace(**{key: getattr(requested, key) for key in run_keys})
    changed = [
        f"{key}: checkpoint {getattr(saved, key)!r}, config {getattr(requested, key)!r}"
        for key in saved.to_dict()
        if key not in run_keys and getattr(saved, key) != getattr(requested, key)
    ]
    if changed:
        print("GAN resume: keeping the checkpoint's values for " + "; ".join(changed), file=log)
    return merged


def _saved_step(path: Path) -> int:
    return int(load_checkpoint(path)["step"])


def _sample_batch(
    volumes: np.ndarray, labels: np.ndarray, settings: GANSettings, sampler: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch drawn with replacement by the loop's own generator, so a resumed run draws the same batches."""
    idx = torch.randint(0, volumes.shape[0], (settings.batch_size,), generator=sampler).numpy()
    x = torch.from_numpy(np.ascontiguousarray(volumes[idx], dtype=np.float32))[:, None].to(device)
    if settings.channels_last:
        x = to_channels_last(x)
    return x, torch.from_numpy(labels[idx]).to(device)


def _check_finite(values: dict[str, float], names: Sequence[str], iteration: int, ckpt_path: Path) -> None:
    """Stop on the first NaN/Inf loss, before a checkpoint could save the broken weights over good ones."""
    for name in names:
        if not math.isfinite(values[name]):
            if ckpt_path.exists():
                kept = f"the last good checkpoint ({ckpt_path}, iteration {_saved_step(ckpt_path)}) is kept"
            else:
                kept = "no checkpoint had been written yet"
            raise TrainingDivergedError(
                f"GAN training diverged at iteration {iteration}: {name} = {values[name]}; {kept}. "
                "Try a lower gan.lr or gan.precision: fp32."
            )


def _log_progress(bar: Any, values: dict[str, float], step: int, iterations: int, log: TextIO) -> None:
    """One progress line (and the bar's postfix): losses and speed, for a job log read while it runs."""
    bar.set_postfix(
        eg=f"{values['eg_loss']:.3g}", d=f"{values['d_loss']:.3g}", cd=f"{values['cd_loss']:.3g}",
        l1=f"{values['eg_l1']:.3g}", refresh=False,
    )
    tqdm.write(
        f"iter {step}/{iterations} eg {values['eg_loss']:.4g} (l1 {values['eg_l1']:.4g}) "
        f"d {values['d_loss']:.4g} (W {values['d_wasserstein']:.4g}) cd {values['cd_loss']:.4g} "
        f"{1.0 / max(values['seconds'], 1e-9):.2f} it/s",
        file=log,
    )


def train_gan(
    volumes: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    settings: GANSettings,
    workdir: str | Path,
    log: TextIO | None = None,
    device: str | torch.device | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    monitor: Callable[[nn.Module], dict[str, float]] | None = None,
) -> TrainResult:
    """Train (or resume) a conditional alpha-GAN on real volumes.

    Batches are drawn with replacement by a seeded generator; a checkpoint is
    written atomically to ``workdir/checkpoint.pt`` every
    ``settings.checkpoint_every`` iterations and at the end. If that file
    exists, training resumes from it (architecture, optimiser state, RNG
    states and loss history included); if it is already at
    ``settings.iterations``, the models are loaded and returned without training.

    Args:
        volumes: ``(N, S, S, S)`` float array in [-1, 1] (a memory map is fine);
            the caller passes the fold's *training* subjects only.
        labels: ``(N,)`` integer labels, index into ``classes``.
        classes: ordered class names.
        settings: hyper-parameters (see :class:`GANSettings`).
        workdir: folder for the checkpoint; keep it outside Snakemake's
            declared outputs so a failed job does not delete it.
        log: stream for the progress bar and log lines (default stderr).
        device: ``None``/"auto" (CUDA if available), "cpu", "cuda:N".
        callback: called as ``callback(iteration, losses)`` after every
            iteration (after any checkpoint of that iteration).
        monitor: called with the generator every ``settings.monitor_every``
            iterations and at the last one (e.g. a
            :class:`brainaug.gan.monitor.SampleMonitor`); its values fill the
            ``MONITOR_COLUMNS`` of the loss history, NaN elsewhere. It must not
            touch the training RNG (the monitor seeds its own), so resume stays exact.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingDivergedError: when a loss is NaN/Inf; the message names the
            iteration and the loss, and the last good checkpoint is kept.
        ValueError, TypeError: for malformed inputs or a checkpoint of other classes.
    """
    log = sys.stderr if log is None else log
    classes = [str(c) for c in classes]
    device = pick_device(device)
    workdir = Path(workdir)
    ckpt_path = workdir / CHECKPOINT_NAME

    state = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if state is not None:
        if list(state.get("classes", [])) != classes:
            raise ValueError(
                f"GAN checkpoint {ckpt_path}: trained for classes {state.get('classes')}, "
                f"asked to continue with {classes}; delete the checkpoint to start over"
            )
        settings = _resume_settings(GANSettings.from_dict(state["settings"]), settings, log)
    _check_inputs(volumes, labels, classes, settings)
    labels = np.asarray(labels, dtype=np.int64)

    configure_backends(device)
    amp_dtype = resolve_precision(settings.precision, device)
    gan = build_alpha_gan(settings, len(classes))
    if settings.output_base != "none":
        gan.generator.set_output_base(volumes, labels)
    gan.to(device)
    if settings.channels_last:
        for module in gan.modules().values():
            to_channels_last(module)
    optimizers = make_optimizers(gan, settings)
    sampler = torch.Generator(device="cpu")
    sampler.manual_seed(settings.seed)

    step, history = 0, []
    if state is not None:
        for name, module in gan.modules().items():
            load_weights(module, state["models"][name], ckpt_path, name)
        for name, opt in optimizers.as_dict().items():
            opt.load_state_dict(state["optimizers"][name])
        restore_rng_state(state["rng"], sampler)
        step = int(state["step"])
        history = _history_rows(state)
        print(f"GAN: resumed from {ckpt_path} at iteration {step}/{settings.iterations}", file=log)
    resumed_from = step

    def checkpoint() -> None:
        for name, module in gan.modules().items():
            for pname, tensor in [*module.named_parameters(), *module.named_buffers()]:
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise TrainingDivergedError(
                        f"GAN training diverged by iteration {step}: {name}.{pname} holds NaN/Inf values; "
                        f"not overwriting the last good checkpoint {ckpt_path}. "
                        "Try a lower gan.lr or gan.precision: fp32."
                    )
        save_checkpoint(
            ckpt_path,
            {
                "step": step,
                "settings": settings.to_dict(),
                "classes": classes,
                "models": {name: m.state_dict() for name, m in gan.modules().items()},
                "optimizers": {name: o.state_dict() for name, o in optimizers.as_dict().items()},
                "rng": capture_rng_state(sampler),
                "losses": history,
                "loss_columns": list(HISTORY_COLUMNS),
                "version": brainaug.__version__,
            },
        )

    n = volumes.shape[0]
    print(
        f"GAN: {n} volumes of {settings.image_size}^3, classes {classes}, device {device}, "
        f"precision {'bf16' if amp_dtype is not None else 'fp32'}, channels_last {settings.channels_last}, "
        f"{settings.iterations} iterations of batch {settings.batch_size}",
        file=log,
    )
    bar = tqdm(
        total=settings.iterations,
        initial=step,
        file=log,
        desc="alpha-GAN",
        unit="it",
        mininterval=1.0 if getattr(log, "isatty", lambda: False)() else 30.0,
        dynamic_ncols=False,
    )
    try:
        while step < settings.iterations:
            started = time.perf_counter()
            x, y = _sample_batch(volumes, labels, settings, sampler, device)
            parts = alpha_gan_step(
                gan, optimizers, x, y, sampler, settings.lambda_gp, settings.lambda_l1, amp_dtype,
                settings.lambda_class,
            )
            values = dict(zip(parts, torch.stack(list(parts.values())).float().cpu().tolist()))
            _check_finite(values, ("eg_loss", "d_loss", "cd_loss", *parts), step + 1, ckpt_path)
            step += 1
            values["iteration"] = step
            values["seconds"] = time.perf_counter() - started
            if monitor is not None and (step % settings.monitor_every == 0 or step == settings.iterations):
                values.update(monitor(gan.generator))
            history.append([float(values.get(c, math.nan)) for c in HISTORY_COLUMNS])
            bar.update(1)
            if step % settings.log_every == 0 or step == settings.iterations:
                _log_progress(bar, values, step, settings.iterations, log)
            if step % settings.checkpoint_every == 0 or step == settings.iterations:
                checkpoint()
            if callback is not None:
                callback(step, values)
    finally:
        bar.close()
    if not ckpt_path.exists():  # e.g. resumed at the end with no new iteration
        checkpoint()
    losses = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    losses["iteration"] = losses["iteration"].astype("int64")
    return TrainResult(
        gan=gan,
        settings=settings,
        classes=classes,
        losses=losses,
        resumed_from=resumed_from,
        device=device,
        checkpoint=ckpt_path,
    )
