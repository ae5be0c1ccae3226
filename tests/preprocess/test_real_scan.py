"""Preprocessing a real head MRI: Colin27 (``ch2``) from Debian's ``mricron-data``.

Measured on this pipeline at S=32: correlation with the template inside the brain
mask 0.79-0.80 (ch2, RAS 1 mm), about 0.80 for the skull-stripped ``ch2bet``.
Thresholds below leave a margin of ~0.05 for platform differences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from brainaug.preprocess import PreprocessSettings, preprocess_scan
from brainaug.preprocess.pipeline import template_on_grid
from brainaug.preprocess.register import resample_like

TEMPLATES = Path("/usr/share/mricron/templates")
CH2 = TEMPLATES / "ch2.nii.gz"
CH2BET = TEMPLATES / "ch2bet.nii.gz"
S = 32

pytestmark = pytest.mark.skipif(
    not CH2.exists(), reason=f"{CH2} missing: install Debian's mricron-data (apt-get install mricron-data)"
)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def ch2() -> sitk.Image:
    return sitk.ReadImage(str(CH2), sitk.sitkFloat32)


@pytest.fixture(scope="module")
def ch2_2mm(ch2) -> sitk.Image:
    return resample_like(ch2, [2.0] * 3)


@pytest.fixture(scope="module")
def ch2_result_path():
    # From the file path, as the workflow calls it (through brainaug.io.images).
    return preprocess_scan(CH2, S, PreprocessSettings.from_config(dict(image_size=S)))


def test_ch2_matches_template_and_skull_is_gone(ch2_result_path):
    res = ch2_result_path
    tpl_brain, tpl_mask = template_on_grid(S)
    assert res.qc["skull_stripped_input"] is False
    assert res.qc["correlation"] >= 0.74, res.qc
    vol = res.volume
    # No skull or scalp outside the brain mask: exactly background.
    assert np.all(vol[~tpl_mask] == -1.0)
    shell = ndimage.binary_dilation(tpl_mask, iterations=2) & ~tpl_mask
    assert vol[shell].mean() == -1.0
    # ... and none inside its edge: with a misregistration the bright scalp/fat
    # would enter the mask's outer layer and outshine the brain's interior.
    edge = tpl_mask & ~ndimage.binary_erosion(tpl_mask, iterations=1)
    interior = ndimage.binary_erosion(tpl_mask, iterations=3)
    assert vol[edge].mean() < vol[interior].mean() - 0.2


def test_non_ras_orientation_gives_the_same_output(ch2_2mm, tmp_path: Path):
    settings = PreprocessSettings.from_config(dict(image_size=S))
    ras = preprocess_scan(ch2_2mm, S, settings)
    pir = sitk.DICOMOrient(ch2_2mm, "PIR")
    assert pir.GetDirection() != ch2_2mm.GetDirection()
    path = tmp_path / "ch2_pir.nii.gz"
    sitk.WriteImage(pir, str(path))
    out = preprocess_scan(path, S, settings)
    mask = template_on_grid(S)[1]
    assert _pearson(ras.volume[mask], out.volume[mask]) >= 0.98
    assert out.qc["correlation"] >= 0.74, out.qc


def test_anisotropic_input(ch2):
    aniso = resample_like(ch2, [1.0, 1.0, 3.0])
    res = preprocess_scan(aniso, S, PreprocessSettings.from_config(dict(image_size=S)))
    assert res.qc["correlation"] >= 0.74, res.qc


@pytest.mark.skipif(not CH2BET.exists(), reason=f"{CH2BET} missing (mricron-data)")
def test_skull_stripped_input_is_detected_and_registered():
    res = preprocess_scan(CH2BET, S, PreprocessSettings.from_config(dict(image_size=S)))
    assert res.qc["skull_stripped_input"] is True
    assert res.qc["correlation"] >= 0.74, res.qc
