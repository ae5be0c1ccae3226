"""Parameters of the synthetic cohort and the samplers that draw them.

Why a module of its own: every random draw of a subject's anatomy and a
session's scanner happens here, in a fixed order (same seed, same cohort);
rendering (:mod:`.render`) only turns these parameters into a scan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import permutations, product
from typing import Any

import numpy as np

from brainaug.config import check_synthetic
from brainaug.settings import build_settings

__all__ = [
    "SyntheticCohortConfig",
    "SubjectParams",
    "SessionParams",
    "sample_subject",
    "sample_session",
    "orientation_codes",
]

#: MMSE mean and SD for the usual class names; other names interpolate by class rank.
_MMSE = {"CN": (29.0, 1.0), "MCI": (27.0, 2.0), "AD": (22.0, 3.0)}
_SEVERITY_RANGE = (0.1, 0.7)  # class means of the first and last class
_PROGRESSION_PER_YEAR = (0.01, 0.06)  # severity increase per year, first and last class


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SyntheticCohortConfig:
    """Settings of the synthetic cohort (config section ``synthetic``).

    Attributes:
        n_per_class: subjects per class, an int or ``{class: int}``.
        classes: diagnosis names, in order of increasing severity.
        seed: master seed; same seed, byte-identical dataset.
        sessions_per_subject: scans per subject (>1 adds ``ses-*`` folders,
            a year or so apart, with progressing atrophy).
        skull_probability: share of sessions written with the skull on.
        severity_sd: within-class SD of the atrophy severity (sets the overlap).
        max_voxels: cap on voxels per scan (larger grids get coarser voxels).
        atrophy_scale: multiplies the diagnosis-dependent part of the atrophy
            (class mean severity above the first class's, and the yearly
            progression above the first class's); the within-class spread
            ``severity_sd`` is not scaled, so classes separate further. 1 is the
            embedded cohort; a positive control uses about 4; 0 removes it (only
            the small age-related difference in severity remains).
        scale: >1 coarsens the working template grid and the scanner voxels by
            this factor (tests use 2 to run in seconds); 1 for real use.
    """

    n_per_class: int | dict[str, int]
    classes: tuple[str, ...]
    seed: int
    sessions_per_subject: int
    skull_probability: float
    severity_sd: float
    max_voxels: int
    atrophy_scale: float
    scale: float

    def __post_init__(self) -> None:
        if not 1.0 <= self.scale <= 4.0:
            raise ValueError(f"synthetic.scale must be in [1, 4], got {self.scale}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, *, scale: float = 1.0) -> SyntheticCohortConfig:
        """Build from the ``synthetic`` config section plus ``classes`` (``data.classes``).

        Defaults and bounds come from the schema; ``scale`` is not configuration
        (tests coarsen the cohort with it).

        Raises:
            TypeError: a value of the wrong type (the message names the key).
            ValueError: unknown key or bad value (the message names the key).
        """
        return build_settings(
            cls, "synthetic", section, borrowed={"classes": "data.classes"}, check=check_synthetic, scale=float(scale)
        )

    def counts(self) -> dict[str, int]:
        """Subjects per class, in class order."""
        if isinstance(self.n_per_class, Mapping):
            return {c: self.n_per_class[c] for c in self.classes}
        return {c: self.n_per_class for c in self.classes}


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class SubjectParams:
    """Anatomy and covariates of one subject (fixed across sessions).

    Attributes:
        participant_id: ``sub-XXX``.
        diagnosis: class name; ``class_rank`` its position in [0, 1] along the classes.
        age, sex, mmse: baseline covariates.
        severity: baseline atrophy severity in [0, max_severity].
        progression: severity increase per year (sessions after the first).
        max_severity: the ceiling of severity (1, or ``atrophy_scale`` when that
            is larger: an exaggerated-atrophy control goes beyond the usual range).
        affine: forward 3x3 linear part (template -> subject) about ``centre``.
        elastic: control-point displacements (mm), shape ``(3, 6, 7, 6)``.
        gm_gain, wm_gain: relative contrast change of grey/white matter.
    """

    participant_id: str
    diagnosis: str
    class_rank: float
    age: float
    sex: str
    mmse: int
    severity: float
    progression: float
    affine: np.ndarray = field(repr=False)
    elastic: np.ndarray = field(repr=False)
    gm_gain: float = 0.0
    wm_gain: float = 0.0
    max_severity: float = 1.0


@dataclass(frozen=True)
class SessionParams:
    """Scanner and visit of one session.

    Attributes:
        session_id: ``ses-XX`` or ``""`` for single-session cohorts.
        years: time since baseline; ``severity``, ``age``, ``mmse`` at this visit.
        skull: whether the head (True) or the brain only is written.
        orientation: nibabel axis code of the voxel axes (e.g. ``"LPS"``).
        oblique: 3x3 rotation (LPS) tilting the scanner grid.
        spacing: voxel size (mm) along the voxel axes (third = slice axis).
        margins: ``(lo0, lo1, lo2, hi0, hi1, hi2)`` mm around the head box.
        bias: 9 coefficients of the log-bias polynomial (x, y, z, x2, y2, z2, xy, xz, yz).
        bias_range: largest |log bias| over the field of view.
        noise_sd: Rician noise SD relative to the template's [0, 1] intensities.
        intensity_scale: multiplier to int16.
    """

    session_id: str
    years: float
    severity: float
    age: float
    mmse: int
    skull: bool
    orientation: str
    oblique: np.ndarray = field(repr=False)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    margins: tuple[float, ...] = (0.0,) * 6
    bias: np.ndarray = field(default_factory=lambda: np.zeros(9), repr=False)
    bias_range: float = 0.0
    noise_sd: float = 0.0
    intensity_scale: float = 1000.0


@lru_cache(maxsize=1)
def orientation_codes() -> tuple[str, ...]:
    """All 48 voxel-axis orientation codes, RAS first."""
    letters = (("R", "L"), ("A", "P"), ("S", "I"))
    codes = []
    for perm in permutations(range(3)):
        for signs in product((0, 1), repeat=3):
            codes.append("".join(letters[perm[a]][signs[a]] for a in range(3)))
    return tuple(sorted(codes, key=lambda c: c != "RAS"))


def _orientation_matrix(code: str) -> np.ndarray:
    """LPS direction matrix whose columns point along the voxel axes of ``code``."""
    ras = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    mat = np.zeros((3, 3))
    for col, letter in enumerate(code):
        axis, sign = ras[letter]
        mat[axis, col] = sign
    return np.diag([-1.0, -1.0, 1.0]) @ mat


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def _truncated_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float) -> float:
    for _ in range(100):
        value = rng.normal(mean, sd)
        if lo <= value <= hi:
            return float(value)
    return float(np.clip(mean, lo, hi))


def sample_subject(
    rng: np.random.Generator,
    participant_id: str,
    diagnosis: str,
    class_rank: float,
    severity_sd: float = 0.15,
    atrophy_scale: float = 1.0,
) -> SubjectParams:
    """Draw one subject's covariates, severity and anatomical variation.

    Args:
        rng: the subject's generator (``default_rng([seed, 1, index])``).
        participant_id: ``sub-XXX``.
        diagnosis: class name.
        class_rank: position of the class, 0 (first, mildest) to 1 (last).
        severity_sd: within-class SD of the severity.
        atrophy_scale: multiplies the class-dependent part of the mean severity
            and of the progression (the positive control of the
            ``synthetic.atrophy_scale`` setting); 1 draws the embedded cohort.
    """
    if not 0.0 <= atrophy_scale <= 5.0:
        raise ValueError(f"atrophy_scale must be in [0, 5], got {atrophy_scale}")
    lo, hi = _SEVERITY_RANGE
    max_severity = max(1.0, float(atrophy_scale))
    age = float(np.clip(rng.normal(72.0 + 3.0 * class_rank, 7.0), 55.0, 90.0))
    sex = "F" if rng.random() < 0.5 else "M"
    mean_sev = lo + atrophy_scale * (hi - lo) * class_rank + 0.004 * (age - 72.0)
    severity = _truncated_normal(rng, mean_sev, severity_sd, 0.0, max_severity)
    mmse_mean, mmse_sd = _MMSE.get(
        diagnosis, (29.0 - 7.0 * class_rank, 1.0 + 2.0 * class_rank)
    )
    mmse = int(np.clip(round(rng.normal(mmse_mean, mmse_sd)), 0, 30))
    plo, phi = _PROGRESSION_PER_YEAR
    progression = plo + atrophy_scale * (phi - plo) * class_rank

    # Global affine: head size (+-6%), shape (+-3% per axis), rotation (+-10 deg), shear.
    scales = rng.uniform(0.94, 1.06) * (1.0 + rng.uniform(-0.03, 0.03, size=3))
    shear = np.eye(3)
    shear[np.triu_indices(3, 1)] = rng.uniform(-0.03, 0.03, size=3)
    rot = np.eye(3)
    for axis, angle in enumerate(np.deg2rad(rng.uniform(-10.0, 10.0, size=3))):
        unit = np.zeros(3)
        unit[axis] = 1.0
        rot = _rotation(unit, angle) @ rot
    affine = rot @ shear @ np.diag(scales)
    amplitude = rng.uniform(1.5, 3.0)
    elastic = rng.normal(0.0, amplitude, size=(3, 6, 7, 6))
    return SubjectParams(
        participant_id=participant_id,
        diagnosis=diagnosis,
        class_rank=class_rank,
        age=round(age, 1),
        sex=sex,
        mmse=mmse,
        severity=severity,
        progression=progression,
        affine=affine,
        elastic=elastic,
        gm_gain=float(rng.uniform(-0.08, 0.08)),
        wm_gain=float(rng.uniform(-0.08, 0.08)),
        max_severity=max_severity,
    )


def sample_session(
    rng: np.random.Generator,
    subject: SubjectParams,
    session_id: str,
    years: float,
    skull_probability: float = 0.5,
) -> SessionParams:
    """Draw one visit's scanner: orientation, voxels, field of view, bias, noise.

    Args:
        rng: the session's generator (``default_rng([seed, 2, subject, session])``).
        subject: the subject scanned.
        session_id: ``ses-XX`` or ``""``.
        years: time since baseline.
        skull_probability: chance that the head (not the brain only) is written.
    """
    severity = float(min(subject.max_severity, subject.severity + subject.progression * years))
    mmse = int(np.clip(round(subject.mmse - 10.0 * (severity - subject.severity)), 0, 30))
    codes = orientation_codes()[1:]  # never RAS: preprocessing must reorient
    orientation = codes[int(rng.integers(len(codes)))]
    oblique = _rotation(rng.normal(size=3), np.deg2rad(rng.uniform(-8.0, 8.0)))
    in_plane = float(rng.uniform(1.0, 1.5))
    slice_mm = float(rng.uniform(1.2, 3.0))
    return SessionParams(
        session_id=session_id,
        years=round(years, 2),
        severity=severity,
        age=round(subject.age + years, 1),
        mmse=mmse,
        skull=bool(rng.random() < skull_probability),
        orientation=orientation,
        oblique=oblique,
        spacing=(in_plane, in_plane, slice_mm),
        margins=tuple(float(m) for m in rng.uniform(-10.0, 15.0, size=6)),
        bias=np.concatenate([rng.normal(0, 1.0, size=3), rng.normal(0, 0.6, size=6)]),
        bias_range=float(rng.uniform(0.15, 0.3)),
        noise_sd=float(rng.uniform(0.01, 0.03)),
        intensity_scale=float(rng.uniform(600.0, 1400.0)),
    )
