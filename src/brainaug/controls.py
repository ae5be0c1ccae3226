"""Controls that show the pipeline cannot cheat, built into the workflow.

Why: an augmentation comparison is only worth reading if the pipeline measures
what the images hold and nothing else. Two controls test that end to end, on
the real workflow (``benchmarks/controls.py`` runs both):

* negative: ``controls.shuffle_labels`` permutes the diagnoses across subjects
  in the cohort table, before the folds are made. Every later stage (splits,
  GAN, classifiers) reads that table, so nothing downstream sees a true label;
  test accuracy above the chance interval would mean a leak (a subject in two
  roles, labels reaching the model another way, a biased metric).
* positive: ``synthetic.atrophy_scale`` (about 4) exaggerates the
  diagnosis-dependent atrophy of the embedded cohort until the classes barely
  overlap; a pipeline that cannot then classify almost perfectly loses the
  signal somewhere (preprocessing, labels, training).

A run with either on is labelled a control run in the results table and the
report (:func:`control_notes`), so its numbers cannot be mistaken for a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from brainaug.cohort.table import subject_table
from brainaug.settings import build_settings, schema_default

__all__ = ["ControlSettings", "control_banner", "control_notes", "shuffle_subject_labels"]


@dataclass(frozen=True)
class ControlSettings:
    """The ``controls`` config section.

    Attributes:
        shuffle_labels: permute the diagnoses across subjects before splitting.
        seed: seed of that permutation.
    """

    shuffle_labels: bool
    seed: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> ControlSettings:
        """Build from the ``controls`` section; defaults and bounds come from the schema."""
        return build_settings(cls, "controls", section)


def shuffle_subject_labels(cohort: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Permute diagnoses across subjects: every scan of a subject gets the subject's new label.

    Permuting scans instead would give one subject several labels, and a
    subject's sessions would then teach the classifier to tell the labels apart
    by anatomy it also sees at test time in another session's guise; permuting
    subjects keeps the unit the folds are made of. The permuted labels are the
    subjects' baseline diagnoses (:func:`~brainaug.cohort.table.subject_table`),
    so the number of subjects per class is unchanged and every fold can still
    be stratified. The result depends only on the set of subjects and ``seed``,
    not on the row order.

    Args:
        cohort: the cohort table (``subject_id``, ``session_id``, ``scan_id``,
            ``diagnosis``, ``label``).
        seed: seed of the permutation.

    Returns:
        A copy of ``cohort`` with ``diagnosis`` and ``label`` replaced.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"controls.seed must be a non-negative integer, got {seed!r}")
    subjects = subject_table(cohort)
    order = np.random.default_rng([int(seed), 11]).permutation(len(subjects))
    diagnosis = dict(zip(subjects["subject_id"], subjects["diagnosis"].to_numpy()[order]))
    label = dict(zip(subjects["subject_id"], subjects["label"].to_numpy()[order]))
    out = cohort.copy()
    out["diagnosis"] = out["subject_id"].astype(str).map(diagnosis)
    out["label"] = out["subject_id"].astype(str).map(label).astype(np.int64)
    return out


def control_notes(config: Mapping[str, Any]) -> list[str]:
    """What makes a run a control run, one sentence each; empty for a real run.

    Args:
        config: the whole workflow config (missing sections take the schema's defaults).
    """
    notes = []
    controls = ControlSettings.from_config(config.get("controls"))
    if controls.shuffle_labels:
        notes.append(
            f"diagnoses shuffled across subjects (controls.shuffle_labels, seed {controls.seed}): "
            "negative control, test accuracy must lie within chance"
        )
    source = (config.get("data") or {}).get("source", schema_default("data.source"))
    scale = (config.get("synthetic") or {}).get("atrophy_scale", schema_default("synthetic.atrophy_scale"))
    if source == "synthetic" and float(scale) != 1.0:
        notes.append(
            f"synthetic atrophy scaled by {float(scale):g} (synthetic.atrophy_scale): "
            "positive control on an exaggerated cohort, not the study's data"
        )
    return notes


def control_banner(config: Mapping[str, Any]) -> str:
    """One loud line for the results table and report; ``""`` for a real run."""
    notes = control_notes(config)
    if not notes:
        return ""
    return "CONTROL RUN - NOT A RESULT: " + "; ".join(notes)
