"""Preprocessing: one T1 scan -> S^3 volume in MNI template space, in [-1, 1], with QC."""

from __future__ import annotations

from brainaug.preprocess.pipeline import (
    PreprocessResult,
    PreprocessSettings,
    detect_skull_stripped,
    preprocess_file,
    preprocess_scan,
    write_nifti,
)
from brainaug.preprocess.qc import plot_qc, summarise, write_summary

__all__ = [
    "PreprocessResult",
    "PreprocessSettings",
    "detect_skull_stripped",
    "plot_qc",
    "preprocess_file",
    "preprocess_scan",
    "summarise",
    "write_nifti",
    "write_summary",
]
