"""Seconds per scan for preprocessing a 1 mm 256x256x176 T1 on ONE thread.

Builds such a scan from Colin27 (``ch2`` from Debian's mricron-data, 1 mm
181x217x181) by padding/cropping it onto a 256x256x176 1 mm grid with a sagittal
(ASL-like) axis order, as a typical 3D MPRAGE is stored, then times
``preprocess_scan`` with one SimpleITK thread. Prints the time per stage, the total
and the correlation with the template. Target: <= 15 s per scan (Clinica's
ANTs-based t1-linear takes about 6 minutes).

Usage:
    python benchmarks/preprocess_speed.py [--size 64] [--repeats 3] [--input PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from brainaug.preprocess import PreprocessSettings, preprocess_scan

CH2 = Path("/usr/share/mricron/templates/ch2.nii.gz")


def make_mprage_like(path: Path = CH2) -> sitk.Image:
    """Colin27 on a 1 mm 256x256x176 grid, sagittal slices first (ASL orientation)."""
    src = sitk.ReadImage(str(path), sitk.sitkFloat32)
    ref = sitk.Image([176, 256, 256], sitk.sitkFloat32)
    ref.SetSpacing((1.0, 1.0, 1.0))
    ref = sitk.DICOMOrient(ref, "ASL")
    ref.SetSpacing((1.0, 1.0, 1.0))
    # Centre the new grid on the centre of the source volume.
    centre = np.array(src.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in src.GetSize()]))
    ref_centre = np.array(ref.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in ref.GetSize()]))
    ref.SetOrigin(tuple(np.array(ref.GetOrigin()) + centre - ref_centre))
    out = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    # A little scanner noise so the background is not exactly zero.
    rng = np.random.default_rng(0)
    arr = sitk.GetArrayFromImage(out)
    arr += np.abs(rng.normal(0.0, 2.0, arr.shape)).astype(np.float32)
    noisy = sitk.GetImageFromArray(arr)
    noisy.CopyInformation(out)
    return noisy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--input", type=Path, default=CH2)
    args = parser.parse_args(argv)
    if not args.input.exists():
        print(f"{args.input} missing: apt-get install mricron-data", file=sys.stderr)
        return 2
    scan = make_mprage_like(args.input)
    print(f"input: {scan.GetSize()} voxels, spacing {scan.GetSpacing()} mm, "
          f"orientation {sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(scan.GetDirection())}")
    settings = PreprocessSettings.from_config({"image_size": args.size, "threads": args.threads})
    preprocess_scan(scan, args.size, settings)  # warm-up: template loading and caches
    runs = []
    for i in range(args.repeats):
        t0 = time.process_time()
        res = preprocess_scan(scan, args.size, settings)
        runs.append({**res.qc, "cpu_seconds": round(time.process_time() - t0, 3)})
        print(json.dumps({"run": i, **runs[-1]}))
    stages = [k for k in runs[0] if k.startswith("t_")]
    print(f"\nS={args.size}, threads={args.threads}, median of {args.repeats} runs:")
    for k in stages:
        print(f"  {k[2:]:<12} {statistics.median(r[k] for r in runs):7.2f} s")
    total = statistics.median(r["seconds"] for r in runs)
    print(f"  {'total':<12} {total:7.2f} s   (target <= 15 s)")
    print(f"  {'CPU total':<12} {statistics.median(r['cpu_seconds'] for r in runs):7.2f} s")
    print(f"  correlation  {runs[0]['correlation']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
