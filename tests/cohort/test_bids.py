"""read_bids: T1w discovery, labels from participants.tsv / sessions.tsv, errors."""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainaug.cohort import COHORT_COLUMNS, CohortError, find_t1w, load_cohort, read_bids

CLASSES = ["CN", "MCI", "AD"]


def _nifti(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Seeded by the path: identical files under two subjects are refused.
    data = np.random.default_rng(zlib.crc32(str(path).encode())).uniform(size=(4, 4, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)


def _tsv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n")


@pytest.fixture
def bids(tmp_path: Path) -> Path:
    root = tmp_path / "bids"
    _nifti(root / "sub-01/ses-M00/anat/sub-01_ses-M00_T1w.nii.gz")
    _nifti(root / "sub-01/ses-M12/anat/sub-01_ses-M12_run-01_T1w.nii.gz")
    _nifti(root / "sub-01/ses-M12/anat/sub-01_ses-M12_run-02_T1w.nii.gz")
    _nifti(root / "sub-02/anat/sub-02_T1w.nii")
    _nifti(root / "sub-03/ses-M00/anat/sub-03_ses-M00_acq-mprage_T1w.nii.gz")
    # Not T1w, not in anat, or not a subject: all ignored.
    _nifti(root / "sub-02/anat/sub-02_T2w.nii.gz")
    _nifti(root / "sub-02/func/sub-02_task-rest_bold.nii.gz")
    _nifti(root / "derivatives/sub-09/anat/sub-09_T1w.nii.gz")
    (root / "sub-02/anat/sub-02_T1w.json").write_text("{}")
    _tsv(
        root / "participants.tsv",
        [["participant_id", "diagnosis_bl", "sex", "age"],
         ["sub-01", "CN", "F", "70"], ["sub-02", "AD", "M", "75"], ["03", "MCI", "F", "n/a"]],
    )
    _tsv(
        root / "sub-01/sub-01_sessions.tsv",
        [["session_id", "diagnosis_bl", "age"], ["ses-M00", "", "70.1"], ["ses-M12", "MCI", "71.1"]],
    )
    return root


def test_find_t1w(bids: Path) -> None:
    names = [p.name for p in find_t1w(bids)]
    assert names == [
        "sub-01_ses-M00_T1w.nii.gz",
        "sub-01_ses-M12_run-01_T1w.nii.gz",
        "sub-01_ses-M12_run-02_T1w.nii.gz",
        "sub-02_T1w.nii",
        "sub-03_ses-M00_acq-mprage_T1w.nii.gz",
    ]


def test_read_bids_contract(bids: Path) -> None:
    df = read_bids(bids, CLASSES, label_column="diagnosis_bl")
    assert list(df.columns) == COHORT_COLUMNS
    assert df["scan_id"].tolist() == [
        "sub-01_ses-M00",
        "sub-01_ses-M12_run-01",
        "sub-01_ses-M12_run-02",
        "sub-02",
        "sub-03_ses-M00_acq-mprage",
    ]
    assert df["subject_id"].tolist() == ["sub-01"] * 3 + ["sub-02", "sub-03"]
    assert df["session_id"].tolist() == ["ses-M00", "ses-M12", "ses-M12", "", "ses-M00"]
    # Per-session label wins; an empty session value falls back to participants.tsv.
    assert df["diagnosis"].tolist() == ["CN", "MCI", "MCI", "AD", "MCI"]
    assert df["label"].tolist() == [0, 1, 1, 2, 1]
    np.testing.assert_allclose(df["age"], [70.1, 71.1, 71.1, 75.0, np.nan])
    assert df["sex"].tolist() == ["F", "F", "F", "M", "F"]
    assert all(Path(p).is_file() and Path(p).is_absolute() for p in df["image"])


def test_non_numeric_age_names_the_file(bids: Path) -> None:
    path = bids / "participants.tsv"
    path.write_text(path.read_text().replace("n/a", "old"))
    message = r"sub-03_ses-M00_acq-mprage_T1w\.nii\.gz: age 'old' is not a number"
    with pytest.raises(CohortError, match=message):
        read_bids(bids, CLASSES, label_column="diagnosis_bl")


def test_participants_not_utf8_names_the_line(bids: Path) -> None:
    # A participants.tsv saved from a Windows spreadsheet: Latin-1, not UTF-8.
    path = bids / "participants.tsv"
    path.write_bytes(path.read_text().replace("sub-02\tAD\tM", "sub-02\tAD\tM\u00e9").encode("latin-1"))
    message = r"BIDS table \S*participants\.tsv is not UTF-8: line 3, column \d+ has byte 0xe9 .*Save the file as UTF-8"
    with pytest.raises(CohortError, match=message):
        read_bids(bids, CLASSES, label_column="diagnosis_bl")


def test_missing_label_column_lists_columns(bids: Path) -> None:
    with pytest.raises(
        CohortError,
        match=r"No label column 'diagnosis_sc'.*"
        r"'participants.tsv': \['participant_id', 'diagnosis_bl', 'sex', 'age'\]"
        r".*'sub-01_sessions.tsv': \['session_id', 'diagnosis_bl', 'age'\]",
    ):
        read_bids(bids, CLASSES, label_column="diagnosis_sc")


def test_labels_only_in_sessions_files(tmp_path: Path) -> None:
    root = tmp_path / "bids"
    for sub, dx in [("sub-A", "CN"), ("sub-B", "AD")]:
        _nifti(root / f"{sub}/ses-1/anat/{sub}_ses-1_T1w.nii.gz")
        _tsv(root / f"{sub}/{sub}_sessions.tsv", [["session_id", "diagnosis"], ["ses-1", dx]])
    df = read_bids(root, CLASSES)
    assert df["diagnosis"].tolist() == ["CN", "AD"]


def test_subject_without_label(bids: Path) -> None:
    _nifti(bids / "sub-04/anat/sub-04_T1w.nii.gz")
    message = r"sub-04_T1w\.nii\.gz: no 'diagnosis_bl' for sub-04 in participants\.tsv"
    with pytest.raises(CohortError, match=message):
        read_bids(bids, CLASSES, label_column="diagnosis_bl")


def test_unknown_diagnosis_names_the_file(bids: Path) -> None:
    _nifti(bids / "sub-05/anat/sub-05_T1w.nii.gz")
    with (bids / "participants.tsv").open("a") as f:
        f.write("sub-05\tSMC\tM\t60\n")
    with pytest.raises(CohortError, match=r"sub-05_T1w\.nii\.gz: diagnosis 'SMC' of subject 'sub-05'"):
        read_bids(bids, CLASSES, label_column="diagnosis_bl")


def test_no_t1w_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty/sub-01/anat").mkdir(parents=True)
    with pytest.raises(CohortError, match=r"No T1w images under .*empty: expected sub-\*/anat"):
        read_bids(tmp_path / "empty", CLASSES)
    with pytest.raises(CohortError, match=r"BIDS folder not found: .*absent"):
        read_bids(tmp_path / "absent", CLASSES)


def test_nii_and_nii_gz_of_one_scan_collide(tmp_path: Path) -> None:
    root = tmp_path / "bids"
    _nifti(root / "sub-01/anat/sub-01_T1w.nii")
    _nifti(root / "sub-01/anat/sub-01_T1w.nii.gz")
    _tsv(root / "participants.tsv", [["participant_id", "diagnosis"], ["sub-01", "CN"]])
    message = r"Two rows give the same scan_id 'sub-01': .*T1w\.nii; .*T1w\.nii\.gz"
    with pytest.raises(CohortError, match=message):
        read_bids(root, CLASSES)


def test_load_cohort_bids(bids: Path) -> None:
    cfg = {
        "source": "bids",
        "bids_dir": str(bids),
        "classes": ["CN", "AD"],
        "label_column": "diagnosis_bl",
        "exclude_diagnoses": ["MCI"],
    }
    df = load_cohort(cfg, n_folds=1)
    assert df["scan_id"].tolist() == ["sub-01_ses-M00", "sub-02"]
    with pytest.raises(CohortError, match=r"class 'CN' has 1 subjects; 2 cross-validation folds"):
        load_cohort({**cfg, "classes": CLASSES, "exclude_diagnoses": []}, n_folds=2)
