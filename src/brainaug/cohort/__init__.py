"""Cohort ingestion: a manifest or BIDS dataset becomes the validated cohort table."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from brainaug.cohort.bids import find_t1w, read_bids
from brainaug.cohort.manifest import read_manifest
from brainaug.cohort.table import (
    COHORT_COLUMNS,
    CohortError,
    finalize_cohort,
    read_cohort,
    subject_table,
    validate_images,
    write_cohort,
)

__all__ = [
    "COHORT_COLUMNS",
    "CohortError",
    "finalize_cohort",
    "find_t1w",
    "load_cohort",
    "read_bids",
    "read_cohort",
    "read_manifest",
    "subject_table",
    "validate_images",
    "write_cohort",
]

logger = logging.getLogger(__name__)

_SOURCES = ("manifest", "bids")


def load_cohort(data_cfg: Mapping, n_folds: int) -> pd.DataFrame:
    """Build the cohort table from the config's ``data`` section.

    Args:
        data_cfg: ``source`` (``"manifest"`` or ``"bids"``; the embedded
            synthetic cohort is generated as BIDS first and comes in as
            ``"bids"``), ``classes`` (list, label order), ``manifest`` (path,
            for ``manifest``), ``bids_dir`` (path, for ``bids``),
            ``label_column`` (default ``"diagnosis"``), ``exclude_diagnoses``
            (default ``[]``).
        n_folds: number of outer folds; every class needs this many subjects.

    Returns:
        The validated cohort table.

    Raises:
        ValueError: unknown source or a missing key; CohortError for bad data.
    """
    source = data_cfg.get("source")
    if source not in _SOURCES:
        raise ValueError(f"data.source must be one of {list(_SOURCES)}, got {source!r}")
    if "classes" not in data_cfg:
        raise ValueError("data.classes is required: the diagnoses to keep, in label order")
    key = "manifest" if source == "manifest" else "bids_dir"
    if not data_cfg.get(key):
        raise ValueError(f"data.{key} is required when data.source is {source!r}")
    kwargs = dict(
        classes=data_cfg["classes"],
        label_column=data_cfg.get("label_column", "diagnosis"),
        n_folds=n_folds,
        exclude_diagnoses=data_cfg.get("exclude_diagnoses") or (),
    )
    reader = read_manifest if source == "manifest" else read_bids
    cohort = reader(data_cfg[key], **kwargs)
    logger.info(
        "Cohort: %d scans of %d subjects; per class: %s",
        len(cohort), cohort["subject_id"].nunique(), cohort["diagnosis"].value_counts().to_dict(),
    )
    return cohort
