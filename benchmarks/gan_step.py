"""Time one alpha-GAN training iteration (E/G + D + CD step) as brainaug runs it.

Usage::

    python benchmarks/gan_step.py --size 64 --width 64 --batch 4 --iters 5 --compare-fp32 --decompose
    python benchmarks/gan_step.py --size 32 --width 16 --latent 128 --batch 4 --iters 20 --threads 1

Prints one line per timed configuration and ``seconds_per_iter=<x>`` (the
project's configuration) as the last line. Random volumes stand in for data:
the cost of an iteration does not depend on the values.

``--compare-fp32`` also times the plain version of the same iteration and
prints ``speedup=<plain / project>``. Plain means what a straightforward
PyTorch port of the reference does: fp32, default contiguous memory layout,
PyTorch's default (unfused) Adam, and the reference's layer computations
(upsample then convolve; library convolutions for the heads and the stem).
The project's iteration computes the same function with bf16 autocast
(``--precision``), channels_last_3d, fused Adam and the layers of
:mod:`brainaug.gan.layers`.

``--decompose`` adds a third timing, fp32 and contiguous but with the
project's layers and fused Adam, so the speedup splits into what the exact
layer reformulations give (they speed fp32 up as well) and what precision
and memory layout give on top.

``--allocator default`` leaves glibc's allocator as it is; by default both
timings run with :func:`brainaug.memory.retain_freed_memory`, as workflow jobs do.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from brainaug.device import (
    PRECISIONS,
    configure_backends,
    pick_device,
    resolve_precision,
    set_threads,
    to_channels_last,
)
from brainaug.gan.layers import set_plain_layers
from brainaug.gan.networks import build_alpha_gan, count_parameters
from brainaug.gan.settings import GANSettings
from brainaug.gan.train import alpha_gan_step, make_optimizers
from brainaug.memory import retain_freed_memory

__all__ = ["time_iterations", "main"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_iterations(
    settings: GANSettings,
    n_classes: int,
    iters: int,
    warmup: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    channels_last: bool,
    plain_layers: bool = False,
    fused_adam: bool = True,
) -> tuple[list[float], list[float]]:
    """Wall and process-CPU seconds of each of ``iters`` timed iterations (after ``warmup`` untimed ones).

    CPU seconds (all threads together) are less disturbed than wall time when
    other processes share the cores.
    """
    gan = build_alpha_gan(settings, n_classes).to(device)
    for module in gan.modules().values():
        set_plain_layers(module, plain_layers)
        if channels_last:
            to_channels_last(module)
    optimizers = make_optimizers(gan, settings, fused=fused_adam)
    rng = torch.Generator(device="cpu")
    rng.manual_seed(settings.seed)
    s, b = settings.image_size, settings.batch_size
    x = (torch.rand(b, 1, s, s, s, generator=rng) * 2 - 1).to(device)
    if channels_last:
        x = to_channels_last(x)
    y = torch.randint(0, n_classes, (b,), generator=rng).to(device)
    times, cpu_times = [], []
    for i in range(warmup + iters):
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        parts = alpha_gan_step(gan, optimizers, x, y, rng, settings.lambda_gp, settings.lambda_l1, amp_dtype)
        torch.stack(list(parts.values())).cpu()  # wait for the step, as training does
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    return times, cpu_times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="image size S (default 64)")
    parser.add_argument("--width", type=int, default=64, help="network width (default 64)")
    parser.add_argument("--latent", type=int, default=1000, help="latent size (default 1000)")
    parser.add_argument("--batch", type=int, default=4, help="batch size (default 4)")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first (default 1)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="project precision (default auto)")
    parser.add_argument("--no-channels-last", action="store_true", help="project run without channels_last_3d")
    parser.add_argument("--compare-fp32", action="store_true", help="also time the plain fp32 iteration; print speedup")
    parser.add_argument(
        "--decompose", action="store_true", help="also time fp32/contiguous with the project's layers and fused Adam"
    )
    parser.add_argument(
        "--allocator", choices=("retain", "default"), default="retain",
        help="glibc allocator: keep freed memory (as workflow jobs do; default) or leave it as is",
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--classes", type=int, default=3, help="number of classes (default 3)")
    args = parser.parse_args(argv)

    retained = retain_freed_memory() if args.allocator == "retain" else False
    threads = set_threads(args.threads)
    device = pick_device(args.device)
    configure_backends(device)
    settings = GANSettings.from_config({
        "image_size": args.size, "width": args.width, "latent_dim": args.latent, "batch_size": args.batch,
        "precision": args.precision, "channels_last": not args.no_channels_last,
    })
    gan = build_alpha_gan(settings, args.classes)
    sizes = ", ".join(f"{k} {count_parameters(m) / 1e6:.2f}M" for k, m in gan.modules().items())
    del gan
    amp_dtype = resolve_precision(settings.precision, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device={device} ({name}) threads={threads} torch={torch.__version__} retain_freed_memory={retained}")
    print(f"size={args.size} width={args.width} latent={args.latent} batch={args.batch} params: {sizes}")

    def run(label: str, dtype: torch.dtype | None, channels_last: bool, plain: bool) -> float:
        times, cpu_times = time_iterations(
            settings, args.classes, args.iters, args.warmup, device, dtype, channels_last,
            plain_layers=plain, fused_adam=not plain,
        )
        med = statistics.median(times)
        print(
            f"mode={label} precision={'bf16' if dtype is not None else 'fp32'} channels_last={channels_last} "
            f"layers={'plain' if plain else 'project'} adam={'default' if plain else 'fused'} "
            f"median_s={med:.4f} min_s={min(times):.4f} iters_per_s={1.0 / med:.3f} "
            f"cpu_s={statistics.median(cpu_times):.4f} "
            f"times={[round(t, 4) for t in times]}",
            flush=True,
        )
        return med

    plain = run("plain", None, False, plain=True) if args.compare_fp32 else None
    fp32 = run("fp32", None, False, plain=False) if args.decompose else None
    project = run("project", amp_dtype, settings.channels_last, plain=False)
    if plain is not None and fp32 is not None:
        print(f"speedup_layers={plain / fp32:.3f} speedup_precision_layout={fp32 / project:.3f}")
    if plain is not None:
        print(f"speedup={plain / project:.3f}")
    print(f"seconds_per_iter={project:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
