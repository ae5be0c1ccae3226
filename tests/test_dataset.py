"""Stacking preprocessed volumes: order, shape checks, memory-mapped loading."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainaug.dataset import build_dataset, load_dataset, select_subjects
from brainaug.template import grid_affine


def _write(path, value, size=16, affine=None):
    data = np.full((size,) * 3, value, dtype=np.float32)
    nib.save(nib.Nifti1Image(data, grid_affine(16) if affine is None else affine), str(path))
    return path


@pytest.fixture
def cohort(tmp_path):
    rows = []
    paths = {}
    for i, (subject, diag) in enumerate([("s2", "AD"), ("s1", "CN"), ("s1", "CN"), ("s3", "MCI")]):
        scan = f"sub-{subject}_ses-{i}"
        rows.append({"scan_id": scan, "subject_id": subject, "diagnosis": diag,
                     "label": str(["CN", "MCI", "AD"].index(diag))})
        paths[scan] = _write(tmp_path / f"{scan}.nii.gz", float(i) / 10)
    return pd.DataFrame(rows), paths


def test_stack_follows_sorted_scan_ids_and_maps(tmp_path, cohort):
    table, paths = cohort
    index = build_dataset(table, paths, 16, tmp_path / "v.npy", tmp_path / "i.tsv", expected_affine=grid_affine(16))
    array, loaded = load_dataset(tmp_path / "v.npy", tmp_path / "i.tsv")
    assert isinstance(array, np.memmap)
    assert array.shape == (4, 16, 16, 16)
    assert loaded["scan_id"].tolist() == sorted(table["scan_id"])
    for row, volume in zip(index.itertuples(), array):
        expected = float(row.scan_id.rsplit("-", 1)[1]) / 10
        assert volume.mean() == pytest.approx(expected)
    vols, labels, rows = select_subjects(array, loaded, ["s1"])
    assert vols.shape[0] == 2 and set(rows["subject_id"]) == {"s1"} and labels.tolist() == [0, 0]


def test_wrong_shape_names_the_file_and_leaves_nothing(tmp_path, cohort):
    table, paths = cohort
    bad = table["scan_id"].iloc[0]
    paths[bad] = _write(tmp_path / "bad.nii.gz", 0.0, size=8)
    with pytest.raises(ValueError, match=r"bad\.nii\.gz, got shape \(8, 8, 8\)"):
        build_dataset(table, paths, 16, tmp_path / "v.npy", tmp_path / "i.tsv")
    assert not list(tmp_path.glob("*.npy*")) and not (tmp_path / "i.tsv").exists()


def test_other_grid_is_refused(tmp_path, cohort):
    table, paths = cohort
    scan = table["scan_id"].iloc[1]
    paths[scan] = _write(tmp_path / "shifted.nii.gz", 0.0, affine=np.eye(4))
    with pytest.raises(ValueError, match=r"shifted\.nii\.gz is not on the template grid"):
        build_dataset(table, paths, 16, tmp_path / "v.npy", tmp_path / "i.tsv", expected_affine=grid_affine(16))


def test_exclusion_drops_scans(tmp_path, cohort):
    table, paths = cohort
    index = build_dataset(table, paths, 16, tmp_path / "v.npy", tmp_path / "i.tsv", exclude=["sub-s3_ses-3"])
    assert "sub-s3_ses-3" not in index["scan_id"].tolist() and len(index) == 3
