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
- manifest problems and image headers (missing, unreadable, 2D, 4D): the
  ``cohort`` checkpoint (no ``results/cohort.tsv``);
- voxel problems (NaN/Inf, constant, truncated data): the ``preprocess`` rule of
  that scan (no ``results/preprocessed/<scan>.nii.gz``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

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


class Study:
    """A scratch study folder: manifest rows, images, config, and a way to run it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = root / "manifest.tsv"
        self.rows = helpers.make_manifest_rows(root, classes=("CN", "AD"), subjects_per_class=3, seed=0)

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
    trained = [f for f in left if f.split("/")[0] in TRAINING_OUTPUTS]
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


COHORT_CASES: dict[str, Callable[[Study], tuple[list[str] | None, list[str]]]] = {
    "missing_image": _missing_image,
    "missing_column": _missing_column,
    "unknown_diagnosis": _unknown_diagnosis,
    "conflicting_diagnoses": _conflicting_diagnoses,
    "duplicate_row": _duplicate_row,
    "too_few_subjects": _too_few_subjects,
    "unreadable_2d_4d_images": _bad_headers,
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
