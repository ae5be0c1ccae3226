"""brainaug.cohort.duplicates: the same file or byte-identical files under two subjects."""

from __future__ import annotations

from pathlib import Path

import pytest

from brainaug.cohort.duplicates import DuplicateImageError, check_shared_images, find_shared_images


def _files(tmp_path: Path) -> list[str]:
    contents = {"a": b"x" * 9000, "b": b"x" * 9000, "c": b"y" * 9000, "d": b"x" * 8999 + b"z"}
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
    return [str(tmp_path / n) for n in ("a", "a", "b", "c", "d")]


def test_same_file_and_identical_bytes_are_found(tmp_path: Path) -> None:
    images = _files(tmp_path)
    pairs = find_shared_images(images, ["S1", "S2", "S3", "S4", "S5"])
    assert pairs == [(0, 1, "same file"), (0, 2, "identical bytes")]


def test_one_subject_may_list_one_scan_twice(tmp_path: Path) -> None:
    images = _files(tmp_path)
    assert find_shared_images(images, ["S1", "S1", "S1", "S4", "S5"]) == []


def test_message_names_lines_subjects_and_files(tmp_path: Path) -> None:
    images = _files(tmp_path)[:3]
    origins = [f"line {i + 2} of m.tsv" for i in range(3)]
    with pytest.raises(DuplicateImageError, match=r"2 scan\(s\) appear under two different subjects") as err:
        check_shared_images(images, ["CN0", "Z1", "Z2"], origins)
    text = str(err.value)
    assert f"line 2 of m.tsv (subject 'CN0') and line 3 of m.tsv (subject 'Z1') name the same file {images[0]}" in text
    assert f"line 2 of m.tsv (subject 'CN0', {images[0]}) and line 4 of m.tsv (subject 'Z2', {images[2]}) are byte-identical" in text
