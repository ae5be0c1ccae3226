"""Writing the synthetic cohort as a BIDS dataset (atomically) and reading its ground truth.

Why a module of its own: the file layout, metadata and the atomic directory
swap are independent of how the scans are drawn and rendered.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

import brainaug
from brainaug.cohort.synthetic.params import (
    SubjectParams,
    SyntheticCohortConfig,
    sample_session,
    sample_subject,
)
from brainaug.cohort.synthetic.render import render_session
from brainaug.template import _bundle_dir

__all__ = ["make_synthetic_cohort", "read_truth", "is_synthetic_dataset", "TRUTH_RELPATH"]

#: Where the ground truth lives inside the generated BIDS dataset.
TRUTH_RELPATH = Path("derivatives") / "brainaug-truth" / "truth.tsv"

_GENERATOR_TAG = "brainaug.cohort.synthetic"
_DEFAULT_CLASSES = ("CN", "MCI", "AD")


def _write_nifti_gz(image: nib.Nifti1Image, path: Path) -> None:
    """gzip without a timestamp, so equal images give equal bytes."""
    path.write_bytes(gzip.compress(image.to_bytes(), compresslevel=1, mtime=0))


# --------------------------------------------------------------------------- cohort


def _session_job(args: tuple) -> dict:
    """Sample and render one (subject, session); write the scan; return its truth row."""
    subject, seed, index, ses_index, session_id, years, cfg, root = args
    rng = np.random.default_rng([seed, 2, index, ses_index])
    session = sample_session(rng, subject, session_id, years, cfg.skull_probability)
    image, truth = render_session(subject, session, rng, scale=cfg.scale, max_voxels=cfg.max_voxels)
    stem = subject.participant_id + (f"_{session_id}" if session_id else "")
    anat = Path(root) / subject.participant_id / (session_id or "") / "anat"
    anat.mkdir(parents=True, exist_ok=True)
    _write_nifti_gz(image, anat / f"{stem}_T1w.nii.gz")
    zooms = image.header.get_zooms()
    return {
        "participant_id": subject.participant_id,
        "session_id": session_id,
        "diagnosis": subject.diagnosis,
        "years": session.years,
        "age": session.age,
        "mmse": session.mmse,
        "severity": round(session.severity, 4),
        **truth,
        "skull": int(session.skull),
        "orientation": "".join(nib.aff2axcodes(image.affine)),
        "shape": "x".join(str(n) for n in image.shape),
        "voxel_mm": "x".join(f"{z:.3f}" for z in zooms),
    }


def is_synthetic_dataset(path: Path) -> bool:
    """True if ``path`` holds a dataset written by :func:`make_synthetic_cohort`."""
    try:
        description = json.loads((Path(path) / "dataset_description.json").read_text())
        generated = description.get("GeneratedBy", [])
        return any(
            g.get("Name") == "brainaug" and g.get("Description", "").startswith(_GENERATOR_TAG) for g in generated
        )
    except (OSError, ValueError, AttributeError):
        return False


def _check_outdir(outdir: Path) -> None:
    if outdir.exists():
        if not outdir.is_dir():
            raise ValueError(f"outdir {outdir} exists and is not a directory")
        if any(outdir.iterdir()) and not is_synthetic_dataset(outdir):
            raise ValueError(
                f"outdir {outdir} is not empty and not a brainaug synthetic dataset; refusing to overwrite it"
            )


def _tsv(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    def fmt(value: object) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            return "n/a"
        return str(value)

    lines = ["\t".join(columns)] + ["\t".join(fmt(row[c]) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def _write_metadata(
    root: Path, cfg: SyntheticCohortConfig, subjects: Sequence[SubjectParams], truth: pd.DataFrame
) -> None:
    bundle = _bundle_dir()
    _write_json(
        root / "dataset_description.json",
        {
            "Name": "brainaug synthetic dementia cohort",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "License": "MNI ICBM152 template notice (see LICENSE); CerebrA (Manera et al. 2020)",
            "Authors": ["brainaug"],
            "GeneratedBy": [
                {
                    "Name": "brainaug",
                    "Version": brainaug.__version__,
                    "Description": (
                        f"{_GENERATOR_TAG}: MNI ICBM152 2009 template warped per subject "
                        "(elastic + affine variation, diagnosis-dependent atrophy), bias, noise, scanner geometry; "
                        f"seed={cfg.seed}, classes={list(cfg.classes)}, n_per_class={cfg.counts()}, "
                        f"sessions_per_subject={cfg.sessions_per_subject}, scale={cfg.scale}"
                        + (
                            f"; CONTROL: atrophy_scale={cfg.atrophy_scale} (diagnosis-dependent atrophy exaggerated)"
                            if cfg.atrophy_scale != 1.0
                            else ""
                        )
                    ),
                }
            ],
            "HowToAcknowledge": "Cite the MNI ICBM152 and CerebrA articles listed in README.",
            "ReferencesAndLinks": [
                "https://doi.org/10.1016/j.neuroimage.2010.07.033",
                "https://doi.org/10.1016/S1053-8119(09)70884-5",
                "https://doi.org/10.1038/s41597-020-00564-0",
            ],
        },
    )
    shutil.copyfile(bundle / "COPYING-MNI.txt", root / "LICENSE")
    (root / "README").write_text(
        "Synthetic T1w cohort generated by brainaug (brainaug.cohort.synthetic). Not real subjects.\n"
        "Ground truth (severity, structure volumes, scanner geometry): "
        f"{TRUTH_RELPATH.as_posix()}\n\n" + (bundle / "CITATION.md").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    participants = [
        {"participant_id": s.participant_id, "diagnosis": s.diagnosis, "age": s.age, "sex": s.sex, "mmse": s.mmse}
        for s in subjects
    ]
    (root / "participants.tsv").write_text(_tsv(participants, ["participant_id", "diagnosis", "age", "sex", "mmse"]), encoding="utf-8")
    _write_json(
        root / "participants.json",
        {
            "diagnosis": {
                "Description": "Clinical group (synthetic): sets the mean atrophy severity",
                "Levels": {c: f"class {i} of {len(cfg.classes)}" for i, c in enumerate(cfg.classes)},
            },
            "age": {"Description": "Age at the first session", "Units": "year"},
            "sex": {"Description": "Sex", "Levels": {"F": "female", "M": "male"}},
            "mmse": {"Description": "Mini-Mental State Examination at the first session (0-30)"},
        },
    )
    if cfg.sessions_per_subject > 1:
        for sub in subjects:
            rows = truth[truth["participant_id"] == sub.participant_id].to_dict("records")
            (root / sub.participant_id / f"{sub.participant_id}_sessions.tsv").write_text(
                _tsv(rows, ["session_id", "diagnosis", "age", "mmse"]), encoding="utf-8"
            )
    derivative = root / TRUTH_RELPATH.parent
    derivative.mkdir(parents=True, exist_ok=True)
    _write_json(
        derivative / "dataset_description.json",
        {
            "Name": "brainaug synthetic cohort ground truth",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "brainaug", "Version": brainaug.__version__}],
        },
    )
    (root / TRUTH_RELPATH).write_text(_tsv(truth.to_dict("records"), list(truth.columns)), encoding="utf-8")


def make_synthetic_cohort(
    outdir: str | os.PathLike,
    n_per_class: int | Mapping[str, int] = 24,
    classes: Sequence[str] = _DEFAULT_CLASSES,
    seed: int = 0,
    sessions_per_subject: int = 1,
    skull_probability: float = 0.5,
    severity_sd: float = 0.15,
    max_voxels: int = 2_000_000,
    atrophy_scale: float = 1.0,
    scale: float = 1.0,
    n_jobs: int = 1,
) -> Path:
    """Write the synthetic BIDS dataset to ``outdir`` (atomically) and return its path.

    Layout: ``dataset_description.json``, ``README``, ``LICENSE``,
    ``participants.tsv`` (participant_id, diagnosis, age, sex, mmse),
    ``participants.json``, ``sub-XXX/[ses-XX/]anat/sub-XXX[_ses-XX]_T1w.nii.gz``
    (int16), ``sub-XXX/sub-XXX_sessions.tsv`` when there are several sessions,
    and the ground truth in ``derivatives/brainaug-truth/truth.tsv``.

    Args:
        outdir: target folder; may be missing, empty, or a previous dataset
            from this function (replaced); anything else is refused.
        n_per_class: subjects per class (int, or ``{class: int}``).
        classes: diagnoses in order of increasing severity.
        seed: master seed (same seed, byte-identical files).
        sessions_per_subject: scans per subject.
        skull_probability: share of scans with the skull on.
        severity_sd: within-class SD of the atrophy severity.
        max_voxels: cap on voxels per scan.
        atrophy_scale: multiplies the diagnosis-dependent atrophy (1: the embedded
            cohort; about 4: the exaggerated-atrophy positive control).
        scale: coarsening factor for quick tests (1 = full resolution).
        n_jobs: worker processes (results do not depend on it).

    Returns:
        ``outdir`` as a ``Path``.
    """
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an integer >= 1, got {n_jobs!r}")
    cfg = SyntheticCohortConfig.from_config(
        {
            "n_per_class": dict(n_per_class) if isinstance(n_per_class, Mapping) else n_per_class,
            "classes": list(classes),
            "seed": seed,
            "sessions_per_subject": sessions_per_subject,
            "skull_probability": skull_probability,
            "severity_sd": severity_sd,
            "max_voxels": max_voxels,
            "atrophy_scale": atrophy_scale,
        },
        scale=scale,
    )
    outdir = Path(outdir)
    _check_outdir(outdir)

    # Cohort level: shuffle class assignments so that subject numbers do not reveal classes.
    counts = cfg.counts()
    diagnoses = [c for c in cfg.classes for _ in range(counts[c])]
    order = np.random.default_rng([seed, 0]).permutation(len(diagnoses))
    diagnoses = [diagnoses[i] for i in order]
    width = max(3, len(str(len(diagnoses))))
    n_classes = len(cfg.classes)
    subjects = [
        sample_subject(
            np.random.default_rng([seed, 1, index]),
            f"sub-{index + 1:0{width}d}",
            diagnosis,
            cfg.classes.index(diagnosis) / (n_classes - 1),
            cfg.severity_sd,
            cfg.atrophy_scale,
        )
        for index, diagnosis in enumerate(diagnoses)
    ]

    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.tmp-", dir=outdir.parent))
    try:
        jobs = []
        for index, subject in enumerate(subjects):
            visit_rng = np.random.default_rng([seed, 3, index])
            years = 0.0
            for ses in range(cfg.sessions_per_subject):
                if ses:
                    years += float(visit_rng.uniform(0.8, 1.5))
                session_id = f"ses-{ses + 1:02d}" if cfg.sessions_per_subject > 1 else ""
                jobs.append((subject, seed, index, ses, session_id, years, cfg, str(tmp)))
        if n_jobs == 1:
            rows = [_session_job(job) for job in jobs]
        else:
            with ProcessPoolExecutor(max_workers=n_jobs) as pool:
                rows = list(pool.map(_session_job, jobs, chunksize=1))
        truth = pd.DataFrame(rows)
        _write_metadata(tmp, cfg, subjects, truth)
        os.chmod(tmp, 0o755)
        if outdir.exists():
            _check_outdir(outdir)  # may have changed while we worked
            old = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old-", dir=outdir.parent))
            os.replace(outdir, old / "dataset")
            os.replace(tmp, outdir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return outdir


def read_truth(bids_dir: str | os.PathLike) -> pd.DataFrame:
    """Read the ground-truth table of a synthetic dataset (one row per scan).

    Columns: participant_id, session_id, diagnosis, years, age, mmse, severity,
    ``<structure>_mm3`` for each of ``STRUCTURES``, icv_mm3, skull, orientation,
    shape, voxel_mm.
    """
    path = Path(bids_dir) / TRUTH_RELPATH
    if not path.is_file():
        raise ValueError(f"{bids_dir} has no ground truth at {TRUTH_RELPATH}; is it a brainaug synthetic dataset?")
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False, dtype={"session_id": str})
