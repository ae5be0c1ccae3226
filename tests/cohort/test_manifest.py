"""read_manifest / finalize_cohort / load_cohort: the cohort contract and its errors."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainaug.cohort import (
    COHORT_COLUMNS,
    CohortError,
    load_cohort,
    read_cohort,
    read_manifest,
    validate_images,
    write_cohort,
)

CLASSES = ["CN", "MCI", "AD"]


def _nifti(path: Path, shape: tuple[int, ...] = (4, 4, 4)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Seeded by the path: identical files under two subjects are refused.
    data = np.random.default_rng(zlib.crc32(str(path).encode())).uniform(size=shape).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    return path


def _write(path: Path, rows: list[str], sep: str = ",") -> Path:
    path.write_text("\n".join(line.replace(",", sep) for line in rows) + "\n")
    return path


def _images(root: Path, names: list[str]) -> None:
    for name in names:
        _nifti(root / name)


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    _images(tmp_path, ["img/a1.nii.gz", "img/a2.nii.gz", "img/b.nii.gz", "img/c.nii.gz"])
    return _write(
        tmp_path / "m.csv",
        [
            "subject_id,session_id,image,diagnosis,age,sex",
            "s01,M00,img/a1.nii.gz,CN,71.5,F",
            "s01,M12,img/a2.nii.gz,MCI,72.5,F",
            "s02,,img/b.nii.gz, AD ,,",
            f"s03,,{tmp_path / 'img/c.nii.gz'},MCI,80,M",
        ],
    )


def test_manifest_contract(manifest: Path) -> None:
    df = read_manifest(manifest, CLASSES)
    assert list(df.columns) == COHORT_COLUMNS
    assert df["scan_id"].tolist() == ["sub-s01_ses-M00", "sub-s01_ses-M12", "sub-s02", "sub-s03"]
    assert df["diagnosis"].tolist() == ["CN", "MCI", "AD", "MCI"]
    assert df["label"].tolist() == [0, 1, 2, 1]
    assert df["label"].dtype == np.int64
    assert df["session_id"].tolist() == ["M00", "M12", "", ""]
    assert all(Path(p).is_absolute() and Path(p).exists() for p in df["image"])
    assert df["image"].iloc[0] == str((manifest.parent / "img/a1.nii.gz").resolve())
    np.testing.assert_allclose(df["age"], [71.5, 72.5, np.nan, 80.0])
    assert df["sex"].tolist() == ["F", "F", "", "M"]


def test_tsv_and_sniffed_txt_give_same_table(manifest: Path) -> None:
    rows = manifest.read_text().splitlines()
    reference = read_manifest(manifest, CLASSES)
    for name, sep in [("m.tsv", "\t"), ("m.txt", ";"), ("m2.txt", "\t")]:
        other = _write(manifest.parent / name, rows, sep)
        pd.testing.assert_frame_equal(read_manifest(other, CLASSES), reference)


def test_custom_label_column(tmp_path: Path) -> None:
    _images(tmp_path, ["a.nii.gz", "b.nii.gz"])
    path = _write(
        tmp_path / "m.csv",
        ["subject_id,image,diagnosis,diagnosis_bl", "1,a.nii.gz,AD,CN", "2,b.nii.gz,CN,AD"],
    )
    df = read_manifest(path, CLASSES, label_column="diagnosis_bl")
    assert df["diagnosis"].tolist() == ["CN", "AD"]
    with pytest.raises(CohortError, match=r"no label column 'dx'; columns found: \['subject_id'"):
        read_manifest(path, CLASSES, label_column="dx")


def test_round_trip_keeps_types(manifest: Path, tmp_path: Path) -> None:
    df = read_manifest(manifest, CLASSES)
    write_cohort(df, tmp_path / "out" / "cohort.tsv")
    back = read_cohort(tmp_path / "out" / "cohort.tsv")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert back["label"].dtype == np.int64
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cohort.tsv"]  # no temp left


def test_unsafe_ids_are_sanitized_but_kept(tmp_path: Path) -> None:
    _images(tmp_path, ["a.nii.gz", "b.nii.gz", "c.nii.gz"])
    path = _write(
        tmp_path / "m.csv",
        [
            "subject_id,session_id,image,diagnosis",
            "002_S_0295,m/06,a.nii.gz,CN",
            "002_S_0295,m/06,b.nii.gz,CN",
            "sub-X 7,,c.nii.gz,AD",
        ],
    )
    df = read_manifest(path, CLASSES)
    assert df["scan_id"].tolist() == ["sub-002S0295_ses-m06_img-1", "sub-002S0295_ses-m06_img-2", "sub-X7"]
    assert df["subject_id"].tolist() == ["002_S_0295", "002_S_0295", "sub-X 7"]
    assert df["session_id"].tolist() == ["m/06", "m/06", ""]


def test_ids_colliding_after_sanitizing(tmp_path: Path) -> None:
    _images(tmp_path, ["a.nii.gz", "b.nii.gz"])
    path = _write(tmp_path / "m.csv", ["subject_id,image,diagnosis", "a_1,a.nii.gz,CN", "a-1,b.nii.gz,CN"])
    with pytest.raises(CohortError, match=r"\['a-1', 'a_1'\] become the same file-name label 'a1'"):
        read_manifest(path, CLASSES)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["subject,image,diagnosis", "1,a.nii.gz,CN"],
         r"lacks required column\(s\) \['subject_id'\]; columns found: \['subject', 'image', 'diagnosis'\]"),
        (["subject_id,image,diagnosis", "1,a.nii.gz,CN", "2,missing.nii.gz,CN"],
         r"line 3 of .*m\.csv: image not found: .*missing\.nii\.gz"),
        (["subject_id,image,diagnosis", "1,a.nii.gz,CN", "", "2,b.nii.gz,Dementia"],
         r"line 4 of .*m\.csv: diagnosis 'Dementia' of subject '2' is not one of the classes"),
        (["subject_id,image,diagnosis", "1,a.nii.gz,cn"],
         r"line 2 of .*: diagnosis 'cn' .* \(matching is exact\)"),
        (["subject_id,image,diagnosis", "1,a.nii.gz,CN", "1,a.nii.gz,CN"],
         r"line 3 of .*m\.csv: duplicate of line 2 of"),
        (["subject_id,session_id,image,diagnosis", "1,M0,a.nii.gz,CN", "1,M0,b.nii.gz,AD"],
         r"Subject '1' session 'M0' has conflicting diagnoses \['AD', 'CN'\]"),
        (["subject_id,image,diagnosis", "1,a.nii.gz, "],
         r"line 2 of .*m\.csv: empty diagnosis for subject '1'"),
        (["subject_id,image,diagnosis", ",a.nii.gz,CN"], r"line 2 of .*m\.csv: empty subject_id"),
        (["subject_id,image,diagnosis,age", "1,a.nii.gz,CN,old"], r"line 2 of .*: age 'old' is not a number"),
    ],
)
def test_row_errors(tmp_path: Path, rows: list[str], message: str) -> None:
    _images(tmp_path, ["a.nii.gz", "b.nii.gz"])
    with pytest.raises(CohortError, match=message):
        read_manifest(_write(tmp_path / "m.csv", rows), CLASSES)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(CohortError, match=r"Manifest not found: .*nope\.csv"):
        read_manifest(tmp_path / "nope.csv", CLASSES)


def test_excluded_diagnoses_are_dropped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _images(tmp_path, ["a.nii.gz", "b.nii.gz"])
    path = _write(tmp_path / "m.csv", ["subject_id,image,diagnosis", "1,a.nii.gz,CN", "2,gone.nii.gz,SMC"])
    with caplog.at_level(logging.INFO, logger="brainaug.cohort.table"):
        df = read_manifest(path, CLASSES, exclude_diagnoses=["SMC"])
    assert df["subject_id"].tolist() == ["1"]
    assert "dropped 1 scans with excluded diagnoses {'SMC': 1}" in caplog.text
    with pytest.raises(ValueError, match=r"\['CN'\] are listed both in classes and in exclude"):
        read_manifest(path, CLASSES, exclude_diagnoses=["CN"])


def _balanced_manifest(tmp_path: Path, per_class: dict[str, int]) -> Path:
    rows = ["subject_id,image,diagnosis"]
    for name, n in per_class.items():
        for i in range(n):
            _nifti(tmp_path / f"{name}{i}.nii.gz")
            rows.append(f"{name}{i},{name}{i}.nii.gz,{name}")
    return _write(tmp_path / "m.tsv", rows, "\t")


def test_too_few_subjects_for_folds(tmp_path: Path) -> None:
    path = _balanced_manifest(tmp_path, {"CN": 3, "MCI": 3, "AD": 2})
    assert len(read_manifest(path, CLASSES, n_folds=2)) == 8
    with pytest.raises(CohortError, match=r"class 'AD' has 2 subjects; 3 cross-validation folds need"):
        read_manifest(path, CLASSES, n_folds=3)


def test_load_cohort_dispatch(tmp_path: Path) -> None:
    path = _balanced_manifest(tmp_path, {"CN": 2, "MCI": 2, "AD": 2})
    cfg = {"source": "manifest", "manifest": str(path), "classes": CLASSES}
    assert len(load_cohort(cfg, n_folds=2)) == 6
    with pytest.raises(ValueError, match=r"data.source must be one of \['manifest', 'bids'\], got 'xnat'"):
        load_cohort({**cfg, "source": "xnat"}, n_folds=2)
    with pytest.raises(ValueError, match=r"data.bids_dir is required when data.source is 'bids'"):
        load_cohort({**cfg, "source": "bids"}, n_folds=2)
    with pytest.raises(TypeError, match="classes must be a list"):
        load_cohort({**cfg, "classes": "CN,AD"}, n_folds=2)


def test_validate_images_names_bad_scans(tmp_path: Path) -> None:
    _nifti(tmp_path / "ok.nii.gz")
    _nifti(tmp_path / "flat.nii.gz", (4, 4, 1))
    _nifti(tmp_path / "bold.nii.gz", (4, 4, 4, 3))
    (tmp_path / "junk.nii.gz").write_bytes(b"junk")
    path = _write(
        tmp_path / "m.csv",
        ["subject_id,image,diagnosis"] + [f"{n},{n}.nii.gz,CN" for n in ("ok", "flat", "bold", "junk")],
    )
    df = read_manifest(path, CLASSES)
    validate_images(df[df["subject_id"] == "ok"])
    with pytest.raises(CohortError, match=r"3 of 4 images cannot be used") as info:
        validate_images(df, jobs=2)
    text = str(info.value)
    assert "sub-bold: " in text and "4D image with 3 volumes" in text
    assert "sub-flat: " in text and "single slice" in text
    assert "sub-junk: Cannot read image" in text
    assert "sub-ok" not in text


def test_latin1_manifest_is_refused_naming_the_line(tmp_path: Path) -> None:
    _images(tmp_path, ["a.nii.gz", "b.nii.gz"])
    path = tmp_path / "m.csv"
    path.write_bytes("subject_id,image,diagnosis\nS1,a.nii.gz,CN\nJosé,b.nii.gz,AD\n".encode("latin-1"))
    with pytest.raises(CohortError, match=r"m\.csv is not UTF-8: line 3, column 4 has byte 0xe9 .*Save the file as UTF-8"):
        read_manifest(path, ["CN", "AD"])


def test_utf8_manifest_with_byte_order_mark_is_read(tmp_path: Path) -> None:
    _images(tmp_path, ["a.nii.gz", "b.nii.gz"])
    path = tmp_path / "m.csv"
    path.write_bytes("subject_id,image,diagnosis\nS1,a.nii.gz,CN\nJosé,b.nii.gz,AD\n".encode("utf-8-sig"))
    assert sorted(read_manifest(path, ["CN", "AD"])["subject_id"]) == ["José", "S1"]
