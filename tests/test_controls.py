"""The built-in controls: labels shuffled per subject, and how a control run is labelled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainaug.controls import ControlSettings, control_banner, control_notes, shuffle_subject_labels

CLASSES = ["CN", "MCI", "AD"]


def _cohort(n_per_class: int = 8, sessions: int = 3) -> pd.DataFrame:
    """A cohort table with several sessions per subject (labels by class, in class order)."""
    rows = []
    for c, diagnosis in enumerate(CLASSES):
        for i in range(n_per_class):
            subject = f"{diagnosis}{i:02d}"
            for s in range(sessions):
                session = f"ses-M{6 * s}"
                rows.append(
                    {
                        "scan_id": f"sub-{subject}_ses-M{6 * s}",
                        "subject_id": subject,
                        "session_id": session,
                        "diagnosis": diagnosis,
                        "label": c,
                        "image": f"/data/{subject}_{s}.nii.gz",
                        "age": 70.0,
                        "sex": "F",
                    }
                )
    return pd.DataFrame(rows).sort_values("scan_id").reset_index(drop=True)


def _subject_labels(cohort: pd.DataFrame) -> pd.Series:
    per_subject = cohort.groupby("subject_id")["label"]
    assert (per_subject.nunique() == 1).all(), "a subject's sessions got different labels"
    return per_subject.first()


def test_shuffle_permutes_subjects_keeps_class_counts_and_one_label_per_subject() -> None:
    cohort = _cohort()
    shuffled = shuffle_subject_labels(cohort, seed=0)
    before, after = _subject_labels(cohort), _subject_labels(shuffled)
    assert sorted(after.index) == sorted(before.index)
    assert after.value_counts().sort_index().tolist() == before.value_counts().sort_index().tolist() == [8, 8, 8]
    # A real permutation: most subjects change class (a third would keep it by chance).
    assert 0.1 < (after == before.reindex(after.index)).mean() < 0.7
    # Diagnosis and label move together; everything else is untouched.
    assert (shuffled["diagnosis"] == shuffled["label"].map(dict(enumerate(CLASSES)))).all()
    assert shuffled.drop(columns=["diagnosis", "label"]).equals(cohort.drop(columns=["diagnosis", "label"]))
    assert shuffled["label"].dtype == np.int64


def test_shuffle_is_deterministic_and_independent_of_row_order() -> None:
    cohort = _cohort()
    first = _subject_labels(shuffle_subject_labels(cohort, seed=3))
    again = _subject_labels(shuffle_subject_labels(cohort.sample(frac=1.0, random_state=1), seed=3))
    assert first.equals(again)
    other = _subject_labels(shuffle_subject_labels(cohort, seed=4))
    assert not first.equals(other)
    assert _cohort()["label"].equals(cohort["label"])  # the input is not modified


def test_shuffle_takes_the_baseline_diagnosis_of_a_converter() -> None:
    cohort = _cohort(n_per_class=3, sessions=2)
    converter = cohort["subject_id"] == "MCI00"
    cohort.loc[converter & (cohort["session_id"] == "ses-M6"), ["diagnosis", "label"]] = ["AD", 2]
    shuffled = shuffle_subject_labels(cohort, seed=0)
    # Subject-level counts are those of the baseline diagnoses: 3 per class.
    assert _subject_labels(shuffled).value_counts().tolist() == [3, 3, 3]


def test_shuffle_rejects_a_bad_seed() -> None:
    with pytest.raises(ValueError, match="controls.seed"):
        shuffle_subject_labels(_cohort(), seed=-1)


def test_settings_and_banner() -> None:
    assert ControlSettings.from_config({}) == ControlSettings(shuffle_labels=False, seed=0)
    with pytest.raises(ValueError, match="unknown keys"):
        ControlSettings.from_config({"shuffle": True})
    assert control_notes({}) == [] and control_banner({}) == ""
    real = {"data": {"source": "synthetic"}, "synthetic": {"atrophy_scale": 1.0}, "controls": {"shuffle_labels": False}}
    assert control_banner(real) == ""
    shuffled = control_banner({"controls": {"shuffle_labels": True, "seed": 2}})
    assert shuffled.startswith("CONTROL RUN") and "shuffled" in shuffled and "seed 2" in shuffled
    atrophy = control_notes({"synthetic": {"atrophy_scale": 4}})
    assert len(atrophy) == 1 and "scaled by 4" in atrophy[0]
    # The atrophy scale only shapes the embedded cohort: with real data it is no control.
    assert control_notes({"data": {"source": "manifest"}, "synthetic": {"atrophy_scale": 4}}) == []
    both = control_notes({"controls": {"shuffle_labels": True}, "synthetic": {"atrophy_scale": 0}})
    assert len(both) == 2
