"""The embedded synthetic cohort: MNI-template subjects with diagnosis-dependent atrophy.

Why: the workflow needs a default dataset that ships with the package (no
download, no data-use agreement) and still poses the real problem: classes
that differ in the structures dementia affects, overlap the way CN, MCI and AD
do, and arrive as heterogeneous scans that preprocessing must bring back into
template space.

Each subject is the MNI ICBM152 template (``brainaug.template``) resampled
through one composite transform, in this order from a scanner voxel back to the
template (``sitk.Resample`` pulls back):

1. the scanner grid: random orientation (never RAS), small oblique tilt,
   anisotropic voxels, field of view around the head with random margins;
2. a random global affine (head size and shape, rotation, shear);
3. a smooth displacement field = random elastic variation + ``severity`` x the
   atrophy fields of :mod:`brainaug.cohort.atrophy` (hippocampus/amygdala
   shrink, ventricles grow).

Before resampling, the template intensities get a grey/white contrast jitter
and mild cortical thinning (outer grey matter blended towards CSF,
severity-scaled); after it, a smooth multiplicative bias field, Rician noise and
int16 scaling. Skull on for a configurable share of subjects.

Severity is drawn per subject around a class mean with overlap (CN ~0.1,
MCI ~0.4, AD ~0.7, SD 0.15; older subjects slightly more), so one subject
of a class may look like the next class. Ground truth (severity, structure
volumes measured through the very field used, scanner geometry) is written to
``derivatives/brainaug-truth/truth.tsv``.

Determinism: cohort-level draws use ``default_rng([seed, 0])``, subject
anatomy ``default_rng([seed, 1, subject])``, each session's scanner
``default_rng([seed, 2, subject, session])``; files are gzipped with
``mtime=0``, so the same seed gives byte-identical files, whatever ``n_jobs``.

The package: :mod:`.params` (configuration, parameters, samplers),
:mod:`.render` (one scan from its parameters), :mod:`.dataset` (the BIDS
dataset, its metadata and ground truth).
"""

from __future__ import annotations

from brainaug.cohort.synthetic.dataset import (
    TRUTH_RELPATH,
    is_synthetic_dataset,
    make_synthetic_cohort,
    read_truth,
)
from brainaug.cohort.synthetic.params import (
    SessionParams,
    SubjectParams,
    SyntheticCohortConfig,
    orientation_codes,
    sample_session,
    sample_subject,
)
from brainaug.cohort.synthetic.render import STRUCTURES, render_session

__all__ = [
    "SyntheticCohortConfig",
    "SubjectParams",
    "SessionParams",
    "make_synthetic_cohort",
    "sample_subject",
    "sample_session",
    "render_session",
    "read_truth",
    "is_synthetic_dataset",
    "orientation_codes",
    "TRUTH_RELPATH",
    "STRUCTURES",
]
