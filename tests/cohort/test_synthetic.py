"""Tests for the embedded synthetic cohort (brainaug.cohort.synthetic).

Cohorts here are generated at ``scale=2`` (3 mm working grid, coarser scanner
voxels) so the whole module runs in seconds; the pipeline is the same.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainaug.cohort.synthetic import (
    STRUCTURES,
    TRUTH_RELPATH,
    SyntheticCohortConfig,
    is_synthetic_dataset,
    make_synthetic_cohort,
    orientation_codes,
    read_truth,
    render_session,
    sample_session,
    sample_subject,
)
from brainaug.template import _bundle_dir

SCALE = 2.0


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "bids"
    return make_synthetic_cohort(out, n_per_class=2, seed=3, scale=SCALE)


def test_bids_layout_and_participants(cohort: Path) -> None:
    participants = pd.read_csv(cohort / "participants.tsv", sep="\t")
    assert list(participants.columns) == ["participant_id", "diagnosis", "age", "sex", "mmse"]
    assert participants["diagnosis"].value_counts().to_dict() == {"CN": 2, "MCI": 2, "AD": 2}
    assert participants["participant_id"].tolist() == [f"sub-{i:03d}" for i in range(1, 7)]
    assert participants["age"].between(55, 90).all()
    assert set(participants["sex"]) <= {"F", "M"}
    assert participants["mmse"].between(0, 30).all()

    description = json.loads((cohort / "dataset_description.json").read_text())
    assert description["BIDSVersion"] and description["GeneratedBy"][0]["Name"] == "brainaug"
    assert "Louis Collins" in (cohort / "LICENSE").read_text()
    assert json.loads((cohort / "participants.json").read_text())["age"]["Units"] == "year"
    assert is_synthetic_dataset(cohort)

    for sub in participants["participant_id"]:
        path = cohort / sub / "anat" / f"{sub}_T1w.nii.gz"
        image = nib.load(path)
        assert image.ndim == 3
        assert image.get_data_dtype() == np.int16
        assert int(image.header["sform_code"]) == 1
        data = np.asarray(image.dataobj)
        assert data.min() >= 0 and 300 < data.max() < 32767


def test_truth_table_matches_scans(cohort: Path) -> None:
    truth = read_truth(cohort)
    assert len(truth) == 6
    assert truth["session_id"].isna().all() or (truth["session_id"] == "").all()
    for name in STRUCTURES:
        assert (truth[f"{name}_mm3"] > 0).all()
    # Hippocampus (both sides) of an ICBM152-sized head is several cm^3.
    assert truth["hippocampus_mm3"].between(4000, 14000).all()
    assert truth["severity"].between(0, 1).all()


def test_scanner_geometry_varies(cohort: Path) -> None:
    codes, anisotropy = [], []
    for path in sorted(cohort.glob("sub-*/anat/*_T1w.nii.gz")):
        image = nib.load(path)
        codes.append("".join(nib.aff2axcodes(image.affine)))
        zooms = np.array(image.header.get_zooms())
        anisotropy.append(zooms.max() / zooms.min())
    assert "RAS" not in codes
    assert len(set(codes)) > 1
    assert max(anisotropy) > 1.2
    skull = read_truth(cohort)["skull"]
    assert set(skull) == {0, 1}


def test_world_coordinates_are_consistent(cohort: Path) -> None:
    """Whatever the voxel order and tilt, the brain sits where the template's brain is (RAS mm)."""
    tpl_img = nib.load(_bundle_dir() / "brain_mask.nii.gz")
    tpl_voxels = np.argwhere(np.asarray(tpl_img.dataobj) > 0)
    tpl_centre = nib.affines.apply_affine(tpl_img.affine, tpl_voxels.mean(axis=0))
    truth = read_truth(cohort)
    assert not truth["skull"].all()
    for row in truth[truth["skull"] == 0].itertuples():
        image = nib.load(cohort / row.participant_id / "anat" / f"{row.participant_id}_T1w.nii.gz")
        data = np.asarray(image.dataobj, dtype=np.float32)
        brain = np.argwhere(data > 0.3 * np.percentile(data, 99))
        centre = nib.affines.apply_affine(image.affine, brain.mean(axis=0))
        assert np.linalg.norm(centre - tpl_centre) < 12.0, (row.participant_id, centre, tpl_centre)


def test_same_seed_gives_identical_bytes_and_overwrites(cohort: Path, tmp_path: Path) -> None:
    first = _files(cohort)
    again = make_synthetic_cohort(tmp_path / "bids", n_per_class=2, seed=3, scale=SCALE)
    assert _files(again) == first
    # Regenerating over a previous synthetic dataset replaces it, same bytes again.
    make_synthetic_cohort(again, n_per_class=2, seed=3, scale=SCALE)
    assert _files(again) == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_other_seed_gives_other_scans(cohort: Path, tmp_path: Path) -> None:
    other = make_synthetic_cohort(tmp_path / "bids", n_per_class=1, classes=("CN", "AD"), seed=4, scale=SCALE)
    name = "sub-001/anat/sub-001_T1w.nii.gz"
    assert (other / name).read_bytes() != (cohort / name).read_bytes()


def test_refuses_foreign_nonempty_dir(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a brainaug synthetic dataset"):
        make_synthetic_cohort(target, n_per_class=1, scale=SCALE)
    assert (target / "notes.txt").read_text() == "keep me"


def test_severity_shrinks_hippocampus_and_grows_ventricles() -> None:
    """Same subject and scanner, only severity changes: the atrophy goes the intended way."""
    subject = sample_subject(np.random.default_rng([0, 1, 0]), "sub-001", "MCI", 0.5)
    session = sample_session(np.random.default_rng([0, 2, 0, 0]), subject, "", 0.0)
    volumes = []
    for severity in (0.1, 0.4, 0.7):
        visit = dataclasses.replace(session, severity=severity)
        _, truth = render_session(subject, visit, np.random.default_rng(0), scale=3.0)
        volumes.append(truth)
    hippo = [v["hippocampus_mm3"] for v in volumes]
    vent = [v["lateral_ventricle_mm3"] for v in volumes]
    assert hippo[0] > hippo[1] > hippo[2]
    assert vent[0] < vent[1] < vent[2]
    assert 0.7 < hippo[2] / hippo[0] < 0.9  # ~20% loss from CN- to AD-like severity
    assert 1.2 < vent[2] / vent[0] < 1.6
    assert volumes[0]["icv_mm3"] == volumes[2]["icv_mm3"]  # atrophy does not change head size


def test_classes_differ_on_average(cohort: Path) -> None:
    truth = read_truth(cohort)
    truth["hippo_icv"] = truth["hippocampus_mm3"] / truth["icv_mm3"]
    means = truth.groupby("diagnosis")[["hippo_icv", "lateral_ventricle_mm3", "severity"]].mean()
    assert means.loc["CN", "hippo_icv"] > means.loc["AD", "hippo_icv"]
    assert means.loc["CN", "lateral_ventricle_mm3"] < means.loc["AD", "lateral_ventricle_mm3"]
    assert means.loc["CN", "severity"] < means.loc["MCI", "severity"] < means.loc["AD", "severity"]


def test_sessions_progress(tmp_path: Path) -> None:
    root = make_synthetic_cohort(
        tmp_path / "long", n_per_class={"CN": 1, "AD": 1}, classes=("CN", "AD"), sessions_per_subject=2, scale=3.0
    )
    for sub in ("sub-001", "sub-002"):
        sessions = pd.read_csv(root / sub / f"{sub}_sessions.tsv", sep="\t")
        assert list(sessions.columns) == ["session_id", "diagnosis", "age", "mmse"]
        assert sessions["session_id"].tolist() == ["ses-01", "ses-02"]
        assert sessions["age"].iloc[1] > sessions["age"].iloc[0]
        for ses in sessions["session_id"]:
            assert (root / sub / ses / "anat" / f"{sub}_{ses}_T1w.nii.gz").is_file()
    truth = read_truth(root)
    for _, rows in truth.groupby("participant_id"):
        assert rows["severity"].iloc[1] > rows["severity"].iloc[0]
    assert (root / TRUTH_RELPATH).is_file()


def test_orientation_codes() -> None:
    codes = orientation_codes()
    assert len(codes) == len(set(codes)) == 48
    assert codes[0] == "RAS"


def test_config_defaults_and_errors() -> None:
    cfg = SyntheticCohortConfig.from_config({})
    assert cfg.counts() == {"CN": 24, "MCI": 24, "AD": 24}
    assert SyntheticCohortConfig.from_config({"n_per_class": 5, "classes": ["CN", "AD"]}).counts() == {"CN": 5, "AD": 5}
    with pytest.raises(ValueError, match="unknown key"):
        SyntheticCohortConfig.from_config({"n_subjects": 3})
    with pytest.raises(ValueError, match="missing \\['AD'\\]"):
        SyntheticCohortConfig.from_config({"n_per_class": {"CN": 2, "MCI": 2}})
    with pytest.raises(ValueError, match="skull_probability"):
        SyntheticCohortConfig.from_config({"skull_probability": 1.5})
    with pytest.raises(TypeError, match="synthetic.sessions_per_subject: expected an integer"):
        SyntheticCohortConfig.from_config({"sessions_per_subject": 1.5})
    # The config's fields are make_synthetic_cohort's keyword arguments.
    params = inspect.signature(make_synthetic_cohort).parameters
    assert {f.name for f in dataclasses.fields(SyntheticCohortConfig)} <= set(params)
    with pytest.raises(ValueError, match="n_jobs"):
        make_synthetic_cohort("/nonexistent/never", n_per_class=1, n_jobs=0)


def test_atrophy_scale_exaggerates_the_diagnosis_dependent_atrophy(tmp_path: Path) -> None:
    """The positive control: same subjects, class differences scaled, within-class spread not."""
    def draw(diagnosis: str, rank: float, atrophy_scale: float):
        return sample_subject(np.random.default_rng([0, 1, 4]), "sub-005", diagnosis, rank, 0.15, atrophy_scale)

    cn, cn4 = draw("CN", 0.0, 1.0), draw("CN", 0.0, 4.0)
    ad, ad4 = draw("AD", 1.0, 1.0), draw("AD", 1.0, 4.0)
    assert cn4.severity == cn.severity  # the first class is the reference: unchanged
    assert ad4.severity == pytest.approx(ad.severity + 3 * 0.6)  # class mean 0.1 + 4 * 0.6, same draw
    assert ad4.progression - cn4.progression == pytest.approx(4 * (ad.progression - cn.progression))
    assert ad4.max_severity == 4.0 and ad.max_severity == 1.0
    # Rendered, the exaggerated AD subject has a much smaller hippocampus and larger ventricles.
    session = sample_session(np.random.default_rng([0, 2, 4, 0]), ad, "", 0.0)
    truth = {}
    for name, subject in (("x1", ad), ("x4", ad4)):
        visit = dataclasses.replace(session, severity=subject.severity)
        _, truth[name] = render_session(subject, visit, np.random.default_rng(0), scale=3.0)
    assert truth["x4"]["hippocampus_mm3"] < 0.7 * truth["x1"]["hippocampus_mm3"]
    assert truth["x4"]["lateral_ventricle_mm3"] > 1.2 * truth["x1"]["lateral_ventricle_mm3"]
    with pytest.raises(ValueError, match="atrophy_scale"):
        draw("AD", 1.0, 6.0)
    with pytest.raises(ValueError, match="synthetic.atrophy_scale"):
        SyntheticCohortConfig.from_config({"atrophy_scale": 6})

    # Through the cohort generator: the control is recorded in the dataset's description.
    root = make_synthetic_cohort(
        tmp_path / "x4", n_per_class={"CN": 1, "AD": 1}, classes=("CN", "AD"), atrophy_scale=4.0, scale=3.0
    )
    severity = read_truth(root).set_index("diagnosis")["severity"]
    assert severity["AD"] > 2.0 > 0.5 > severity["CN"]
    description = json.loads((root / "dataset_description.json").read_text())["GeneratedBy"][0]["Description"]
    assert "CONTROL: atrophy_scale=4.0" in description
