"""brainaug.duplicates: one brain under two subjects, found on preprocessed volumes."""

from __future__ import annotations

import numpy as np
import pytest

from brainaug.duplicates import DuplicateSubjectsError, check_duplicate_subjects, identical_scans, near_duplicate_pairs


def _cohort(n: int = 8, size: int = 16, seed: int = 0) -> np.ndarray:
    """Brain-like volumes: one shared template plus each subject's own smooth-ish deviation."""
    rng = np.random.default_rng(seed)
    template = rng.random((size, size, size), dtype=np.float32)
    return np.stack([template + 0.3 * rng.random((size, size, size), dtype=np.float32) for _ in range(n)])


def test_copies_are_found_and_distinct_subjects_are_not() -> None:
    volumes = _cohort()
    volumes[7] = volumes[2] + 1e-4 * np.random.default_rng(1).random(volumes[2].shape, dtype=np.float32)
    subjects = [f"S{i}" for i in range(8)]
    pairs = near_duplicate_pairs(volumes, subjects, 0.995, chunk=3)
    assert [(i, j) for i, j, _ in pairs] == [(2, 7)] and pairs[0][2] > 0.999


def test_sessions_of_one_subject_are_not_compared() -> None:
    volumes = _cohort()
    volumes[7] = volumes[2]
    subjects = ["S0", "S1", "S2", "S3", "S4", "S5", "S6", "S2"]
    assert near_duplicate_pairs(volumes, subjects, 0.995) == []
    assert identical_scans(["a", "b", "c", "", "", "", "", "c"], subjects) == []


def test_large_volumes_are_compared_at_32_cubed() -> None:
    volumes = _cohort(n=4, size=64)
    volumes[3] = volumes[0]
    assert [(i, j) for i, j, _ in near_duplicate_pairs(volumes, list("ABCD"), 0.995)] == [(0, 3)]


def test_message_names_both_scans_and_subjects() -> None:
    volumes = _cohort(n=5)
    volumes[4] = volumes[1]
    scans = [f"sub-{c}" for c in "ABCDE"]
    with pytest.raises(DuplicateSubjectsError, match=r"sub-A \(subject 'A'\) and sub-E \(subject 'E'\): identical voxels") as err:
        check_duplicate_subjects(volumes, scans, list("ABCDE"), 0.995, hashes=["h", "x", "y", "z", "h"])
    assert "sub-B (subject 'B') and sub-E (subject 'E'): preprocessed volumes correlate at r = 1.0000" in str(err.value)
