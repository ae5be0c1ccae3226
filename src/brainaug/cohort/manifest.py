"""Read a user's manifest (CSV/TSV: subject, image, diagnosis) into the cohort table.

A manifest is the simplest way to bring data that is not BIDS: one row per
scan, image paths relative to the manifest's folder. Errors name the line
(1-based, the header is line 1) so a spreadsheet user can find it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from brainaug.cohort.table import ORIGIN_COLUMN, CohortError, finalize_cohort, require_utf8

__all__ = ["read_manifest"]

_SEPARATORS = {".csv": ",", ".tsv": "\t"}


def _separator(path: Path) -> str:
    """``,`` for .csv, tab for .tsv; otherwise sniffed from the header line."""
    sep = _SEPARATORS.get(path.suffix.lower())
    if sep is not None:
        return sep
    with path.open(encoding="utf-8-sig") as handle:
        header = handle.readline()
    try:
        return csv.Sniffer().sniff(header, delimiters=",\t;").delimiter
    except csv.Error as err:
        raise CohortError(
            f"Cannot tell the column separator of {path} (expected comma, tab or semicolon); "
            "name it .csv or .tsv"
        ) from err


def read_manifest(
    path: str | Path,
    classes: Sequence[str],
    label_column: str = "diagnosis",
    n_folds: int | None = None,
    exclude_diagnoses: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a CSV/TSV manifest and return the validated cohort table.

    Args:
        path: manifest file (``.csv``, ``.tsv``; other suffixes are sniffed).
            Columns: ``subject_id``, ``image`` (relative to the manifest's
            folder, or absolute; a folder is a DICOM series), the label column;
            optional ``session_id``, ``age``, ``sex``.
        classes: diagnoses to keep, in label order.
        label_column: column holding the diagnosis.
        n_folds: when given, every class needs at least this many subjects.
        exclude_diagnoses: diagnoses whose rows are dropped instead of rejected.

    Returns:
        The cohort table (see :mod:`brainaug.cohort.table`).

    Raises:
        CohortError: missing file or column, or a bad row (named by line number).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CohortError(f"Manifest not found: {path}")
    require_utf8(path, "Manifest")
    try:
        raw = pd.read_csv(
            path,
            sep=_separator(path),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise CohortError(f"Cannot parse manifest {path}: {err}") from err
    raw.columns = [str(c).strip() for c in raw.columns]
    if label_column not in raw.columns:
        raise CohortError(
            f"Manifest {path} has no label column {label_column!r}; columns found: {list(raw.columns)}"
        )
    if label_column != "diagnosis":
        raw = raw.drop(columns=["diagnosis"], errors="ignore").rename(columns={label_column: "diagnosis"})
    raw[ORIGIN_COLUMN] = [f"line {i + 2} of {path}" for i in range(len(raw))]
    # Blank lines (kept so line numbers stay right) carry no scan.
    values = raw.drop(columns=[ORIGIN_COLUMN]).apply(lambda col: col.fillna("").astype(str).str.strip())
    raw = raw.loc[(values != "").any(axis=1)].reset_index(drop=True)
    if "image" in raw.columns:
        base = path.parent.resolve()
        raw["image"] = [
            str(base / Path(p.strip()).expanduser()) if p.strip() else "" for p in raw["image"].fillna("")
        ]
    raw = raw.drop(columns=["scan_id"], errors="ignore")
    return finalize_cohort(raw, classes, path, n_folds=n_folds, exclude_diagnoses=exclude_diagnoses)
