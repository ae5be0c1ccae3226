"""Bad input stops the workflow before any training, with one clear message.

The user's view of the issue "each of these stops the workflow before any
training, with one clear message naming the file or row and what is wrong, and
leaves no half-written output": every test runs ``snakemake`` on the default
target (``all``, which would train GANs and classifiers) in a scratch folder,
with a tiny manifest cohort (20x24x20 NIfTI blobs, 2 classes x 3 subjects,
2 folds), and checks the exit status, the console message and what is left in
``results/``. The library-level checks behind each message are unit-tested in
``tests/io`` and ``tests/cohort``; here we check that the workflow surfaces them.

Where each case is caught:
- config values: Snakemake's ``validate`` against ``config/schema.yaml`` and
  ``brainaug.config.check_config``, before any job (no ``results/`` at all);
- manifest problems (including a non-UTF-8 manifest and one image under two
  subjects) and image headers (missing, unreadable, 2D, 4D, impossibly large,
  truncated .nii, no orientation, no voxel size): the ``cohort`` checkpoint
  (no ``results/cohort.tsv``);
- voxel problems (NaN/Inf, constant, truncated data): the ``preprocess`` rule of
  that scan (no ``results/preprocessed/<scan>.nii.gz``);
- QC-flagged scans (``preprocess.qc_outliers: stop``) and one brain under two
  subjects that only the voxels show (re-exported or near copies): the
  ``dataset`` rule, the last step before training (no ``results/dataset/``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from brainaug_testing import load_test_module

pytestmark = pytest.mark.slow


helpers = load_test_module("workflow/helpers.py")

#: Generous but bounded: a failing run here takes 5-30 s.
TIMEOUT_S = 300

#: Result folders that exist only once training (or anything after it) started.
TRAINING_OUTPUTS = ("dataset", "gan", "classify", "checkpoints", "tables", "figures")

#: QC's montage lives in figures/ but is made before the dataset step decides.
QC_FIGURES = ("figures/qc_montage.png",)


class Study:
    """A scratch study folder: manifest rows, images, config, and a way to run it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = root / "manifest.tsv"
        self.rows = helpers.make_manifest_rows(root, classes=("CN", "AD"), subjects_per_class=3, seed=0)
        #: The manifest's encoding (a spreadsheet on Windows writes Latin-1/cp1252).
        self.encoding = "utf-8"

    def image(self, subject: str) -> Path:
        return self.root / "images" / f"{subject}.nii.gz"

    def run(
        self,
        columns: list[str] | None = None,
        config: dict | None = None,
        targets: tuple[str, ...] = (),
        extra_args: tuple[str, ...] = (),
    ) -> helpers.WorkflowRun:
        helpers.write_manifest(self.manifest, self.rows, columns=columns)
        if self.encoding != "utf-8":
            self.manifest.write_bytes(self.manifest.read_text(encoding="utf-8").encode(self.encoding))
        cfg = helpers.manifest_config(self.manifest, classes=("CN", "AD"), n_folds=2, image_size=16)
        for section, values in (config or {}).items():
            cfg.setdefault(section, {}).update(values)
        configfile = helpers.write_config(self.root / "cfg.yaml", cfg)
        return helpers.run_workflow(
            self.root / "work", configfile, targets=targets, extra_args=extra_args, timeout=TIMEOUT_S
        )


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return Study(tmp_path)


def assert_failed_before_training(run: helpers.WorkflowRun) -> None:
    """Non-zero exit, nothing trained, no temp or partial files anywhere in results/."""
    assert run.returncode != 0, run.describe()
    left = helpers.result_files(run.results)
    trained = [f for f in left if f.split("/")[0] in TRAINING_OUTPUTS and f not in QC_FIGURES]
    assert trained == [], f"training outputs exist after a failed input check: {trained}\n{run.describe()}"
    partial = [f for f in left if f.endswith((".tmp", ".part")) or Path(f).name.startswith(".")]
    assert partial == [], f"half-written files left behind: {partial}\n{run.describe()}"


def assert_messages(run: helpers.WorkflowRun, patterns: list[str]) -> None:
    for pattern in patterns:
        assert re.search(pattern, run.output), f"no match for {pattern!r}\n{run.describe()}"


# ---------------------------------------------------------------- control


def test_valid_cohort_passes_the_checks_and_excluded_diagnoses_are_dropped(study: Study) -> None:
    """The cohort every bad-input test starts from is valid, so their failures are the bad input's.

    An extra MCI subject listed in ``data.exclude_diagnoses`` is dropped, not an error.
    """
    helpers.write_volume(study.image("MCI0"), helpers.blob_volume(seed=99))
    study.rows.append({**study.rows[0], "subject_id": "MCI0", "image": "images/MCI0.nii.gz", "diagnosis": "MCI"})
    run = study.run(config={"data": {"exclude_diagnoses": ["MCI"]}}, targets=("results/splits.json",))

    assert run.returncode == 0, run.describe()
    assert run.error_lines() == []
    cohort = pd.read_csv(run.results / "cohort.tsv", sep="\t", dtype=str)
    assert sorted(cohort["subject_id"]) == ["AD0", "AD1", "AD2", "CN0", "CN1", "CN2"]
    assert cohort["image"].map(lambda p: Path(p).is_absolute()).all()
    splits = json.loads((run.results / "splits.json").read_text())
    assert splits["classes"] == ["CN", "AD"] and len(splits["folds"]) == 2


# ---------------------------------------------------------------- invalid config


CONFIG_CASES = {
    # Schema bounds, enums and typos: Snakemake's validate names the key path.
    "n_folds_below_minimum": ("cv", {"n_folds": 1}, [r"1 is less than the minimum of 2", r"\['cv'\]\['n_folds'\]"]),
    "image_size_not_allowed": (
        "preprocess",
        {"image_size": 48},
        [r"48 is not one of \[16, 32, 64, 128\]", r"\['preprocess'\]\['image_size'\]"],
    ),
    "misspelled_key": (
        "gan",
        {"widht": 8},
        [r"Additional properties are not allowed \('widht' was unexpected\)", r"\['gan'\]"],
    ),
    "wrong_type": ("classifier", {"lr": "fast"}, [r"'fast' is not of type 'number'", r"\['classifier'\]\['lr'\]"]),
    # A missing manifest is caught by the cross-key checks (brainaug.config.check_config).
    # The key that preprocess.qc_outliers replaced is refused with the value to use instead.
    "old_exclude_qc_outliers": (
        "preprocess",
        {"exclude_qc_outliers": False},
        [r"preprocess\.exclude_qc_outliers \(False\) was replaced by preprocess\.qc_outliers: write 'qc_outliers: keep'"],
    ),
    "missing_manifest": (
        "data",
        {"manifest": "{root}/no_such_manifest.tsv"},
        [r"data\.manifest: no such file: \S*no_such_manifest\.tsv"],
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_invalid_config_value_is_named_before_any_job(study: Study, case: str) -> None:
    section, values, patterns = CONFIG_CASES[case]
    values = {k: v.format(root=study.root) if isinstance(v, str) else v for k, v in values.items()}
    run = study.run(config={section: values})

    assert_failed_before_training(run)
    assert_messages(run, patterns)
    assert not run.results.exists(), f"a job ran despite the invalid config\n{run.describe()}"
    assert not (run.workdir / "logs").exists(), run.describe()


# ---------------------------------------------------------------- bad manifest


def _missing_image(study: Study) -> tuple[list[str] | None, list[str]]:
    study.rows[1]["image"] = "images/no_such_scan.nii.gz"
    return None, [r"error in cohort", r"line 3 of \S*manifest\.tsv: image not found: \S*no_such_scan\.nii\.gz"]


def _missing_column(study: Study) -> tuple[list[str] | None, list[str]]:
    columns = ["subject_id", "session_id", "diagnosis", "age", "sex"]  # no "image"
    return columns, [r"error in cohort", r"manifest\.tsv lacks required column\(s\) \['image'\]"]


def _unknown_diagnosis(study: Study) -> tuple[list[str] | None, list[str]]:
    helpers.write_volume(study.image("MCI0"), helpers.blob_volume(seed=99))
    study.rows.append({**study.rows[0], "subject_id": "MCI0", "image": "images/MCI0.nii.gz", "diagnosis": "MCI"})
    return None, [
        r"error in cohort",
        r"line 8 of \S*manifest\.tsv: diagnosis 'MCI' of subject 'MCI0' is not one of the classes \['CN', 'AD'\]",
        r"exclude_diagnoses",
    ]


def _conflicting_diagnoses(study: Study) -> tuple[list[str] | None, list[str]]:
    helpers.write_volume(study.image("CN0_rescan"), helpers.blob_volume(seed=98))
    study.rows.append({**study.rows[0], "image": "images/CN0_rescan.nii.gz", "diagnosis": "AD"})
    return None, [
        r"error in cohort",
        r"Subject 'CN0' session 'ses-01' has conflicting diagnoses \['AD', 'CN'\]",
        r"line 2 of \S*manifest\.tsv: CN; line 8 of \S*manifest\.tsv: AD",
    ]


def _duplicate_row(study: Study) -> tuple[list[str] | None, list[str]]:
    study.rows.append(dict(study.rows[2]))
    return None, [r"error in cohort", r"line 8 of \S*manifest\.tsv: duplicate of line 4 of \S*manifest\.tsv"]


def _too_few_subjects(study: Study) -> tuple[list[str] | None, list[str]]:
    study.rows = [r for r in study.rows if r["subject_id"] not in ("AD1", "AD2")]
    return None, [
        r"error in cohort",
        r"class 'AD' has 1 subjects; 2 cross-validation folds need at least 2 subjects per class",
    ]


def _bad_headers(study: Study) -> tuple[list[str] | None, list[str]]:
    """Unreadable, 2D and 4D images are all found by one header pass and listed together."""
    study.image("CN1").write_bytes(b"not a NIfTI file at all\n" * 20)
    helpers.write_volume(study.image("CN2"), helpers.blob_volume(seed=1)[:, :, 10])
    helpers.write_volume(study.image("AD1"), np.stack([helpers.blob_volume(seed=s) for s in range(3)], axis=-1))
    return None, [
        r"error in cohort",
        r"3 of 6 images cannot be used",
        r"sub-CN1_ses-01: Cannot read image \S*CN1\.nii\.gz",
        r"sub-CN2_ses-01: Expected a 3D image in \S*CN2\.nii\.gz, got a 2D image",
        r"sub-AD1_ses-01: Expected a single 3D volume in \S*AD1\.nii\.gz, got a 4D image with 3 volumes",
    ]


def _one_scan_two_subjects(study: Study) -> tuple[list[str] | None, list[str]]:
    """Z1 names CN0's file; Z2's file is a byte-identical copy of it."""
    study.image("Z2").write_bytes(study.image("CN0").read_bytes())
    study.rows.append({**study.rows[3], "subject_id": "Z1", "image": "images/CN0.nii.gz"})
    study.rows.append({**study.rows[3], "subject_id": "Z2", "image": "images/Z2.nii.gz"})
    return None, [
        r"error in cohort",
        r"2 scan\(s\) appear under two different subjects",
        r"line 2 of \S*manifest\.tsv \(subject 'CN0'\) and line 8 of \S*manifest\.tsv \(subject 'Z1'\) "
        r"name the same file \S*images/CN0\.nii\.gz",
        r"line 2 of \S*manifest\.tsv \(subject 'CN0', \S*CN0\.nii\.gz\) and line 9 of \S*manifest\.tsv "
        r"\(subject 'Z2', \S*Z2\.nii\.gz\) are byte-identical files",
        r"give both rows the same subject_id if they are sessions of one subject",
    ]


def _impossible_or_unoriented_headers(study: Study) -> tuple[list[str] | None, list[str]]:
    """A 4000^3 header over ~100 bytes, a truncated .nii, no orientation, zero voxel sizes: one header pass."""
    helpers.write_header_only(study.image("CN1"), (4000, 4000, 4000))
    nii = study.root / "images" / "CN2.nii"
    helpers.write_volume(nii, helpers.blob_volume(seed=2))
    nii.write_bytes(nii.read_bytes()[:20000])
    study.rows[2]["image"] = "images/CN2.nii"
    helpers.write_without_orientation(study.image("AD1"), helpers.blob_volume(seed=4))
    zero = study.root / "images" / "AD2.nii"
    helpers.write_without_orientation(zero, helpers.blob_volume(seed=5), zero_pixdim=True)
    study.rows[5]["image"] = "images/AD2.nii"
    return None, [
        r"error in cohort",
        r"4 of 6 images cannot be used",
        r"sub-CN1_ses-01: The header of \S*CN1\.nii\.gz claims shape \(4000, 4000, 4000\) \(6\.4e\+10 voxels\), "
        r"more than any MRI volume",
        r"sub-CN2_ses-01: The header of \S*CN2\.nii claims shape \(20, 24, 20\) of float32 \(\d+ bytes\), "
        r"but the file holds 20000 bytes; it is truncated",
        r"sub-AD1_ses-01: \S*AD1\.nii\.gz has no orientation \(qform_code = sform_code = 0\)",
        r"set preprocess\.assume_orientation",
        r"sub-AD2_ses-01: \S*AD2\.nii has no valid voxel size \(pixdim\[1:4\] = \[0\.0, 0\.0, 0\.0\]",
    ]


def _latin1_manifest(study: Study) -> tuple[list[str] | None, list[str]]:
    study.encoding = "latin-1"
    study.rows[4]["sex"] = "fémale"
    return None, [
        r"error in cohort",
        r"Manifest \S*manifest\.tsv is not UTF-8: line 6, column \d+ has byte 0xe9",
        r"Save the file as UTF-8",
    ]


COHORT_CASES: dict[str, Callable[[Study], tuple[list[str] | None, list[str]]]] = {
    "missing_image": _missing_image,
    "missing_column": _missing_column,
    "unknown_diagnosis": _unknown_diagnosis,
    "conflicting_diagnoses": _conflicting_diagnoses,
    "duplicate_row": _duplicate_row,
    "too_few_subjects": _too_few_subjects,
    "unreadable_2d_4d_images": _bad_headers,
    "one_scan_two_subjects": _one_scan_two_subjects,
    "impossible_or_unoriented_headers": _impossible_or_unoriented_headers,
    "latin1_manifest": _latin1_manifest,
}


@pytest.mark.parametrize("case", list(COHORT_CASES))
def test_bad_cohort_stops_at_the_cohort_step(study: Study, case: str) -> None:
    columns, patterns = COHORT_CASES[case](study)
    run = study.run(columns=columns)

    assert_failed_before_training(run)
    assert_messages(run, patterns)
    assert len(run.error_lines()) == 1, run.describe()
    left = helpers.result_files(run.results)
    assert "cohort.tsv" not in left and "splits.json" not in left, left
    assert not any(f.startswith("preprocessed/") for f in left), left


# ---------------------------------------------------------------- bad voxels


def test_bad_voxels_stop_their_scan_in_preprocessing(study: Study) -> None:
    """NaN/Inf, constant and truncated images pass the header check; their own
    preprocess job fails, names the file, and writes no volume. ``--keep-going``
    lets every scan report, and still nothing downstream (dataset, training) runs."""
    nan = helpers.blob_volume(seed=0)
    nan[3:5, 4, 6] = np.nan
    helpers.write_volume(study.image("CN0"), nan)
    inf = helpers.blob_volume(seed=1)
    inf[7, 8, 9] = np.inf
    helpers.write_volume(study.image("CN1"), inf)
    helpers.write_volume(study.image("AD0"), np.full((20, 24, 20), 7.0, dtype=np.float32))
    data = study.image("AD1").read_bytes()
    study.image("AD1").write_bytes(data[: len(data) // 2])
    # One good scan (AD2) is enough to show that good scans keep their outputs;
    # each class keeps the 2 subjects that 2 folds need.
    study.rows = [r for r in study.rows if r["subject_id"] != "CN2"]
    bad = {
        "sub-CN0_ses-01": r"\S*CN0\.nii\.gz has 2 non-finite \(NaN or Inf\) voxels",
        "sub-CN1_ses-01": r"\S*CN1\.nii\.gz has 1 non-finite \(NaN or Inf\) voxels",
        "sub-AD0_ses-01": r"\S*AD0\.nii\.gz is constant \(every voxel is 7\.0\)",
        "sub-AD1_ses-01": r"Cannot read image \S*AD1\.nii\.gz",
    }

    run = study.run(extra_args=("--keep-going",))

    assert_failed_before_training(run)
    assert_messages(run, [rf"error in preprocess \(scan={scan}\): \w+: .*{msg}" for scan, msg in bad.items()])
    assert len(run.error_lines()) == len(bad), run.describe()
    left = helpers.result_files(run.results)
    assert "cohort.tsv" in left, left
    for scan in bad:
        assert not [f for f in left if f.startswith(("preprocessed/", "qc/")) and scan in f], left
    good = "sub-AD2_ses-01"
    assert f"preprocessed/{good}.nii.gz" in left and f"qc/{good}.json" in left, run.describe()
    assert "qc/summary.tsv" not in left, left


# ---------------------------------------------------------------- allowed on purpose


def test_sessions_of_one_subject_may_share_a_scan_and_an_assumed_orientation_is_used(study: Study) -> None:
    """A re-listed baseline (byte-identical copy under the same subject) is allowed; a NIfTI
    without orientation passes once ``preprocess.assume_orientation`` says what to assume,
    and its scan is preprocessed."""
    study.image("CN0_again").write_bytes(study.image("CN0").read_bytes())
    study.rows.append({**study.rows[0], "session_id": "ses-02", "image": "images/CN0_again.nii.gz"})
    helpers.write_without_orientation(study.image("AD1"), helpers.blob_volume(seed=4))
    run = study.run(
        config={"preprocess": {"assume_orientation": "RAS"}},
        targets=("results/cohort.tsv", "results/preprocessed/sub-AD1_ses-01.nii.gz"),
    )

    assert run.returncode == 0, run.describe()
    cohort = pd.read_csv(run.results / "cohort.tsv", sep="\t", dtype=str)
    assert (cohort["subject_id"] == "CN0").sum() == 2
    log = (run.workdir / "logs" / "preprocess" / "sub-AD1_ses-01.log").read_text()
    assert "has no orientation; assuming RAS as configured" in log, log


# ---------------------------------------------------------------- decided before training


def _flag_every_scan() -> dict:
    """A QC floor no blob reaches: every scan is flagged; QC decides as the default does (stop)."""
    return {"preprocess": {"qc_min_correlation": 0.999, "qc_outliers": "stop"}}


def test_qc_outliers_stop_the_run_before_training_by_default(study: Study) -> None:
    run = study.run(config=_flag_every_scan())

    assert_failed_before_training(run)
    assert_messages(
        run,
        [
            r"error in dataset",
            r"QC flagged 6 of 6 scans, and preprocess\.qc_outliers is 'stop', so nothing is trained",
            r"sub-CN0_ses-01: registration correlation -?\d\.\d{3}, robust z -?\d+\.\d{2} "
            r"\(correlation -?\d\.\d{3} < qc_min_correlation 0\.999",
            r"preprocess\.qc_outliers: exclude \(leave them out of training\) or preprocess\.qc_outliers: keep",
        ],
    )
    assert len(run.error_lines()) == 1, run.describe()
    assert "qc/decisions.tsv" not in helpers.result_files(run.results)


def test_qc_outliers_keep_and_exclude_are_recorded(study: Study) -> None:
    """``keep`` trains on flagged scans, ``exclude`` leaves them out; both are in qc/decisions.tsv."""
    cfg = _flag_every_scan()
    cfg["preprocess"]["qc_outliers"] = "keep"
    run = study.run(config=cfg, targets=("results/dataset/index.tsv",))
    assert run.returncode == 0, run.describe()
    decisions = pd.read_csv(run.results / "qc" / "decisions.tsv", sep="\t", dtype={"scan_id": str})
    assert (decisions["decision"] == "kept").all() and decisions["flagged"].all()
    assert decisions["reason"].str.contains("preprocess.qc_outliers: keep").all()
    assert len(pd.read_csv(run.results / "dataset" / "index.tsv", sep="\t")) == 6

    # Flag only the worst-registered scan and leave it out.
    summary = pd.read_csv(run.results / "qc" / "summary.tsv", sep="\t", dtype={"scan_id": str})
    corr = summary.sort_values("correlation")
    worst = corr["scan_id"].iloc[0]
    floor = float(corr["correlation"].iloc[:2].mean())
    run = study.run(
        config={"preprocess": {"qc_min_correlation": floor, "qc_outliers": "exclude"}},
        targets=("results/dataset/index.tsv",),
    )
    assert run.returncode == 0, run.describe()
    decisions = pd.read_csv(run.results / "qc" / "decisions.tsv", sep="\t", dtype={"scan_id": str})
    assert decisions.loc[decisions["decision"] == "excluded", "scan_id"].tolist() == [worst]
    index = pd.read_csv(run.results / "dataset" / "index.tsv", sep="\t", dtype={"scan_id": str})
    assert worst not in set(index["scan_id"]) and len(index) == 5


def test_one_brain_under_two_subjects_stops_at_the_dataset_step(study: Study) -> None:
    """Copies the cohort step cannot see: Z1 is CN0 re-exported (same voxels, new header and
    format), Z2 is CN1 with faint noise added. The dataset step names both pairs; nothing trains.

    Blobs have no anatomy: what sets one apart from the others is noise, so a noisy copy's
    registration moves it more than a brain's. Here a noisy copy reaches r ~ 0.89 and distinct
    blobs stay below 0.3, hence the lower threshold; on brain-like scans (the embedded cohort)
    an int16 re-export reaches 0.9998, 5 % added noise 0.996, distinct subjects at most 0.72."""
    cn0 = nib.load(str(study.image("CN0")))
    reexported = nib.Nifti1Image(np.asarray(cn0.dataobj), cn0.affine)
    reexported.header["descrip"] = b"re-exported"
    nib.save(reexported, str(study.root / "images" / "Z1.nii"))
    noisy = np.asarray(nib.load(str(study.image("CN1"))).dataobj, dtype=np.float32)
    noisy = noisy + np.random.default_rng(7).normal(0.0, 0.05, noisy.shape).astype(np.float32)
    helpers.write_volume(study.image("Z2"), noisy)
    study.rows.append({**study.rows[3], "subject_id": "Z1", "image": "images/Z1.nii"})
    study.rows.append({**study.rows[4], "subject_id": "Z2", "image": "images/Z2.nii.gz"})
    run = study.run(config={"preprocess": {"duplicate_correlation": 0.8}})

    assert_failed_before_training(run)
    assert_messages(
        run,
        [
            r"error in dataset",
            r"2 pair\(s\) of different subjects hold the same scan \(preprocess\.duplicate_correlation = 0\.8",
            r"sub-CN0_ses-01 \(subject 'CN0'\) and sub-Z1_ses-01 \(subject 'Z1'\): identical voxels in the input files",
            r"sub-CN1_ses-01 \(subject 'CN1'\) and sub-Z2_ses-01 \(subject 'Z2'\): preprocessed volumes correlate "
            r"at r = (0\.[89]\d{3}|1\.0000)",
        ],
    )
    assert len(run.error_lines()) == 1, run.describe()
