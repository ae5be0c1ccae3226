"""Cost of the duplicate-scan checks at 2,000 scans (issue 12).

Three checks, timed on synthetic stand-ins:

1. cohort step, ``brainaug.cohort.duplicates.find_shared_images``: 2,000 files of
   one size (the worst case: uncompressed .nii of one shape all have the same
   size, so the size pre-filter separates nothing and every file gets its 16
   sampled blocks read), two of them byte-identical copies (hashed whole);
2. preprocessing, ``brainaug.preprocess.pipeline.voxel_hash``: the digest of one
   1 mm scan's voxels (256 x 256 x 170 float32) as loaded, per scan;
3. dataset step, ``brainaug.duplicates.near_duplicate_pairs``: 2,000
   preprocessed volumes (memory-mapped .npy, as the dataset step has them) at
   32^3 (the default) and 64^3 (the study), one near-copy planted.

The files of (1) are sparse (a random 4 KB block every MiB, holes elsewhere),
so the timing is of the algorithm and the page cache, not of a cold disk: on a
cold disk, add one seek per sampled block (16 per file).

    OMP_NUM_THREADS=1 python benchmarks/duplicate_checks.py --workdir /tmp/dup-bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np


def _bench_cohort(work: Path, n: int, size: int) -> float:
    from brainaug.cohort.duplicates import find_shared_images

    folder = work / "files"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"scan{i:04d}.nii"
        with open(path, "wb") as handle:
            handle.truncate(size)
            for offset in range(0, size, 1 << 20):
                handle.seek(offset)
                handle.write(rng.bytes(4096))
        paths.append(str(path))
    shutil.copyfile(paths[0], folder / "copy.nii")
    paths.append(str(folder / "copy.nii"))
    subjects = [f"S{i}" for i in range(len(paths))]
    start = time.perf_counter()
    pairs = find_shared_images(paths, subjects)
    seconds = time.perf_counter() - start
    assert pairs == [(0, n, "identical bytes")], pairs
    return seconds


def _bench_voxel_hash() -> float:
    import SimpleITK as sitk

    from brainaug.preprocess.pipeline import voxel_hash

    image = sitk.GetImageFromArray(np.random.default_rng(0).random((170, 256, 256), dtype=np.float32))
    start = time.perf_counter()
    for _ in range(5):
        voxel_hash(image)
    return (time.perf_counter() - start) / 5


def _bench_dataset(work: Path, n: int, size: int) -> float:
    from brainaug.duplicates import near_duplicate_pairs

    path = work / f"volumes{size}.npy"
    rng = np.random.default_rng(1)
    stack = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, size, size, size))
    base = rng.random((size, size, size), dtype=np.float32)
    for s in range(0, n, 100):
        m = min(100, n - s)
        stack[s: s + m] = base + 0.3 * rng.random((m, size, size, size), dtype=np.float32)
    stack[n - 1] = stack[5] + 0.001 * rng.random((size, size, size), dtype=np.float32)
    stack.flush()
    del stack
    volumes = np.load(path, mmap_mode="r")
    start = time.perf_counter()
    pairs = near_duplicate_pairs(volumes, [f"S{i}" for i in range(n)], 0.995)
    seconds = time.perf_counter() - start
    assert [(i, j) for i, j, _ in pairs] == [(5, n - 1)], pairs
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--scans", type=int, default=2000)
    parser.add_argument("--file-mb", type=int, default=22, help="size of each cohort file (256x256x170 int16)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    t = _bench_cohort(args.workdir, args.scans, args.file_mb << 20)
    print(f"cohort step, {args.scans} same-sized files + 1 copy: {t:.2f} s")
    t = _bench_voxel_hash()
    print(f"voxel hash of one 256x256x170 scan: {1000 * t:.0f} ms (x {args.scans} scans, in parallel jobs)")
    for size in (32, 64):
        t = _bench_dataset(args.workdir, args.scans, size)
        print(f"dataset step, {args.scans} volumes of {size}^3: {t:.2f} s")
    shutil.rmtree(args.workdir)


if __name__ == "__main__":
    main()
