"""The validated cohort table: one row per scan, the contract every later stage reads.

Both readers (manifest, BIDS) produce a raw table and hand it to
:func:`finalize_cohort`, so a cohort is checked the same way whatever its
source, and every error names the manifest line or BIDS file to fix.

Columns of the result (``COHORT_COLUMNS``): ``scan_id`` (unique, filename-safe,
e.g. ``sub-001_ses-01``), ``subject_id`` and ``session_id`` (as the user wrote
them; ``session_id`` may be empty), ``diagnosis``, ``label`` (index of the
diagnosis in ``classes``), ``image`` (absolute path), ``age`` (float, NaN when
unknown), ``sex`` (may be empty). Rows are sorted by ``scan_id``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from brainaug.cohort.duplicates import DuplicateImageError, check_shared_images
from brainaug.io.atomic import atomic_output

__all__ = [
    "COHORT_COLUMNS",
    "CohortError",
    "finalize_cohort",
    "check_classes",
    "safe_label",
    "natural_key",
    "subject_table",
    "write_cohort",
    "read_cohort",
    "validate_images",
    "require_utf8",
]

logger = logging.getLogger(__name__)

COHORT_COLUMNS = ["scan_id", "subject_id", "session_id", "diagnosis", "label", "image", "age", "sex"]

#: Columns a raw table must have before finalizing.
REQUIRED_COLUMNS = ("subject_id", "image", "diagnosis")

#: Column (optional) telling, per row, where it came from: "line 3 of x.csv", a BIDS file.
ORIGIN_COLUMN = "_origin"


#: Spellings of "unknown" in an age column (BIDS writes n/a).
_MISSING = {"", "n/a", "na", "nan", "none"}


class CohortError(ValueError):
    """The cohort description (manifest, BIDS dataset, labels) is invalid."""


def check_classes(classes: Sequence[str]) -> list[str]:
    """Return ``classes`` as a list of stripped names, rejecting empty or repeated ones."""
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError(f"classes must be a list of diagnosis names, got {classes!r}")
    names = [str(c).strip() for c in classes]
    if len(names) < 2:
        raise ValueError(f"classes needs at least 2 diagnoses, got {names}")
    if any(not n for n in names):
        raise ValueError(f"classes contains an empty name: {list(classes)}")
    if len(set(names)) != len(names):
        raise ValueError(f"classes contains duplicates: {names}")
    return names


def safe_label(value: str) -> str:
    """Make an ID usable as a BIDS label in file names: letters and digits only.

    ``002_S_0295`` becomes ``002S0295``; a leading ``sub-``/``ses-`` is kept
    out by the caller. Originals stay in ``subject_id``/``session_id``.
    """
    return re.sub(r"[^A-Za-z0-9]", "", str(value))


def natural_key(value: str) -> list[object]:
    """Sort key where digit runs compare as numbers: ``M6 < M12 < M108``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(value))]


def _origins(df: pd.DataFrame, source: str) -> list[str]:
    if ORIGIN_COLUMN in df.columns:
        return [str(o) for o in df[ORIGIN_COLUMN]]
    return [f"row {i + 1} of {source}" for i in range(len(df))]


def _strip(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str).str.strip()


def _strip_prefix(value: str, prefix: str) -> str:
    return value[len(prefix):] if value.startswith(prefix) else value


def _build_scan_ids(df: pd.DataFrame) -> list[str]:
    """``sub-<s>[_ses-<t>]``, with ``_img-<k>`` added when one session has several images."""
    bases = []
    for subject, session in zip(df["subject_id"], df["session_id"]):
        base = "sub-" + safe_label(_strip_prefix(subject, "sub-"))
        if session:
            base += "_ses-" + safe_label(_strip_prefix(session, "ses-"))
        bases.append(base)
    counts = pd.Series(bases).value_counts()
    ids = list(bases)
    for base in counts[counts > 1].index:
        rows = [i for i, b in enumerate(bases) if b == base]
        rows.sort(key=lambda i: natural_key(df["image"].iloc[i]))
        for k, i in enumerate(rows, start=1):
            ids[i] = f"{base}_img-{k}"
    return ids


def _sanitize_scan_id(scan: str) -> str:
    """Keep BIDS-style ``key-value`` entities joined by ``_``; letters/digits inside each."""
    parts = []
    for part in str(scan).strip().split("_"):
        key, sep, value = part.partition("-")
        parts.append(f"{safe_label(key)}-{safe_label(value)}" if sep else safe_label(part))
    return "_".join(p for p in parts if p.strip("-"))


def _check_unique_mapping(original: pd.Series, safe: pd.Series, what: str) -> None:
    """Two different IDs that sanitize to the same label would merge two subjects."""
    pairs = pd.DataFrame({"orig": original.to_numpy(), "safe": safe.to_numpy()}).drop_duplicates()
    clash = pairs[pairs["safe"].duplicated(keep=False)]
    if len(clash):
        names = sorted(clash["orig"].unique())
        raise CohortError(
            f"The {what}s {names} become the same file-name label "
            f"{clash['safe'].iloc[0]!r} once characters other than letters and digits are "
            "removed; rename them so they differ in letters or digits"
        )


def subject_table(cohort: pd.DataFrame) -> pd.DataFrame:
    """One row per subject with the diagnosis of the subject's first session.

    A subject's diagnosis can change over sessions (MCI converting to AD).
    Folds are stratified by one label per subject: the first session's, in
    natural order of ``session_id`` (``ses-M6`` before ``ses-M12``), then of
    ``scan_id``; this is the baseline diagnosis studies usually report.

    Args:
        cohort: the cohort table (needs ``subject_id``, ``session_id``,
            ``scan_id``, ``diagnosis``, ``label``).

    Returns:
        DataFrame with columns ``subject_id``, ``diagnosis``, ``label``,
        ``n_scans``, sorted by ``subject_id``.
    """
    sessions = (
        _strip(cohort["session_id"]).tolist() if "session_id" in cohort.columns else [""] * len(cohort)
    )
    scans = cohort["scan_id"].astype(str).tolist()
    order = sorted(range(len(cohort)), key=lambda i: (natural_key(sessions[i]), natural_key(scans[i])))
    ordered = cohort.iloc[order]
    first = ordered.drop_duplicates("subject_id", keep="first").set_index("subject_id")
    n_scans = cohort.groupby("subject_id").size()
    out = pd.DataFrame(
        {
            "subject_id": first.index.astype(str),
            "diagnosis": first["diagnosis"].to_numpy(),
            "label": first["label"].to_numpy().astype(np.int64),
            "n_scans": n_scans.reindex(first.index).to_numpy().astype(np.int64),
        }
    )
    return out.sort_values("subject_id", key=lambda s: s.map(natural_key)).reset_index(drop=True)


def finalize_cohort(
    df: pd.DataFrame,
    classes: Sequence[str],
    source: str | Path,
    n_folds: int | None = None,
    exclude_diagnoses: Sequence[str] = (),
) -> pd.DataFrame:
    """Validate a raw cohort table and return it in the cohort contract.

    Args:
        df: raw rows with at least ``subject_id``, ``image`` (absolute path, or
            relative to the current directory), ``diagnosis``; optional
            ``session_id``, ``age``, ``sex``, ``scan_id`` (BIDS gives one from
            the file name; otherwise built from subject and session) and
            ``_origin`` (where the row came from, used in messages).
        classes: diagnoses to keep, in label order.
        source: the manifest or BIDS root, named in messages.
        n_folds: when given, every class needs at least this many subjects.
        exclude_diagnoses: diagnoses dropped (with a logged count) instead of
            being reported as unknown.

    Returns:
        The cohort table (``COHORT_COLUMNS``), sorted by ``scan_id``.

    Raises:
        CohortError: naming the row (manifest line or BIDS file) and the problem.
    """
    classes = check_classes(classes)
    exclude = {str(d).strip() for d in exclude_diagnoses}
    both = sorted(exclude & set(classes))
    if both:
        raise ValueError(f"Diagnoses {both} are listed both in classes and in exclude_diagnoses")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        found = [c for c in df.columns if c != ORIGIN_COLUMN]
        raise CohortError(f"{source} lacks required column(s) {missing}; columns found: {found}")
    if df.empty:
        raise CohortError(f"{source} lists no scans")

    df = df.reset_index(drop=True).copy()
    origins = _origins(df, str(source))
    for column in ("subject_id", "session_id", "diagnosis", "image", "sex"):
        df[column] = _strip(df[column]) if column in df.columns else ""

    for i, (subject, diagnosis) in enumerate(zip(df["subject_id"], df["diagnosis"])):
        if not subject:
            raise CohortError(f"{origins[i]}: empty subject_id")
        if not diagnosis:
            raise CohortError(f"{origins[i]}: empty diagnosis for subject {subject!r}")
        if diagnosis not in classes and diagnosis not in exclude:
            raise CohortError(
                f"{origins[i]}: diagnosis {diagnosis!r} of subject {subject!r} is not one of "
                f"the classes {classes} (matching is exact); list it in "
                "data.exclude_diagnoses to drop such rows"
            )

    keep = df["diagnosis"].isin(classes).to_numpy()
    if not keep.all():
        dropped = df.loc[~keep, "diagnosis"].value_counts().to_dict()
        logger.info("%s: dropped %d scans with excluded diagnoses %s", source, (~keep).sum(), dropped)
        df = df.loc[keep].reset_index(drop=True)
        origins = [o for o, k in zip(origins, keep) if k]
        if df.empty:
            raise CohortError(f"{source}: no scans left after excluding diagnoses {sorted(exclude)}")

    images = []
    for i, image in enumerate(df["image"]):
        if not image:
            raise CohortError(f"{origins[i]}: empty image path")
        path = Path(image).expanduser()
        if not path.exists():
            raise CohortError(f"{origins[i]}: image not found: {path}")
        images.append(str(path.resolve()))
    df["image"] = images

    first_seen: dict[tuple[str, str, str], int] = {}
    for i, key in enumerate(zip(df["subject_id"], df["session_id"], df["image"])):
        if key in first_seen:
            raise CohortError(
                f"{origins[i]}: duplicate of {origins[first_seen[key]]} "
                f"(subject {key[0]!r}, session {key[1]!r}, image {key[2]})"
            )
        first_seen[key] = i
    try:
        check_shared_images(list(df["image"]), list(df["subject_id"]), origins)
    except DuplicateImageError as err:
        raise CohortError(str(err)) from err

    for (subject, session), group in df.groupby(["subject_id", "session_id"], sort=False):
        diagnoses = group["diagnosis"].unique()
        if len(diagnoses) > 1:
            where = "; ".join(f"{origins[i]}: {df['diagnosis'].iloc[i]}" for i in group.index)
            raise CohortError(
                f"Subject {subject!r} session {session!r} has conflicting diagnoses "
                f"{sorted(diagnoses)} ({where})"
            )

    _check_unique_mapping(
        df["subject_id"], df["subject_id"].map(lambda s: safe_label(_strip_prefix(s, "sub-"))),
        "subject_id",
    )
    if "scan_id" in df.columns:
        df["scan_id"] = [_sanitize_scan_id(scan) for scan in df["scan_id"]]
    else:
        df["scan_id"] = _build_scan_ids(df)
    dup = df["scan_id"].duplicated(keep=False)
    if dup.any():
        scan = df.loc[dup, "scan_id"].iloc[0]
        where = "; ".join(origins[i] for i in np.flatnonzero(df["scan_id"] == scan))
        raise CohortError(f"Two rows give the same scan_id {scan!r}: {where}")

    if "age" in df.columns:
        ages = []
        for i, age in enumerate(df["age"]):
            text = "" if age is None or (isinstance(age, float) and np.isnan(age)) else str(age).strip()
            try:
                ages.append(np.nan if text.lower() in _MISSING else float(text))
            except ValueError as err:
                raise CohortError(f"{origins[i]}: age {text!r} is not a number") from err
        df["age"] = ages
    else:
        df["age"] = np.nan
    df["label"] = df["diagnosis"].map(classes.index).astype(np.int64)

    out = df[COHORT_COLUMNS].sort_values("scan_id").reset_index(drop=True)
    if n_folds is not None:
        counts = subject_table(out)["diagnosis"].value_counts()
        for name in classes:
            n = int(counts.get(name, 0))
            if n < n_folds:
                raise CohortError(
                    f"{source}: class {name!r} has {n} subjects; {n_folds} cross-validation "
                    f"folds need at least {n_folds} subjects per class"
                )
    return out


def write_cohort(df: pd.DataFrame, path: str | Path) -> None:
    """Write the cohort TSV atomically (temp file in the same folder, then ``os.replace``).

    A crash mid-write never leaves a truncated ``cohort.tsv`` that Snakemake
    would take as complete.
    """
    with atomic_output(path, suffix=".tmp") as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        df.to_csv(handle, sep="\t", index=False, na_rep="")


def read_cohort(path: str | Path) -> pd.DataFrame:
    """Read a cohort TSV written by :func:`write_cohort` with the contract's types.

    IDs stay strings (``001`` is not the number 1), empty sessions stay ``""``,
    ``label`` is int64 and ``age`` float.
    """
    path = Path(path)
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in COHORT_COLUMNS if c not in df.columns]
    if missing:
        raise CohortError(f"{path} is not a cohort table: missing columns {missing}")
    df["label"] = df["label"].astype(np.int64)
    df["age"] = pd.to_numeric(df["age"].replace("", np.nan))
    return df


def validate_images(
    df: pd.DataFrame, jobs: int = 1, max_listed: int = 20, assume_orientation: str | None = None
) -> None:
    """Check every image's header (not its voxels) before any per-scan work.

    Reading headers only (SimpleITK ``ReadImageInformation``, nibabel's lazy
    load, the DICOM file list) takes seconds for a whole cohort, so a workflow
    can refuse a cohort with an unreadable, 2D, 4D or impossibly large file, or a
    NIfTI without orientation, up front instead of failing one preprocessing job
    hours in. NaN/Inf and constant images need the voxels and are caught by
    :func:`brainaug.io.load_image` per scan.

    Args:
        df: cohort table (``scan_id``, ``image``).
        jobs: threads reading headers in parallel.
        max_listed: at most this many problems are listed in the message.
        assume_orientation: ``preprocess.assume_orientation``: ``None`` makes a
            NIfTI without orientation an error.

    Raises:
        CohortError: listing each bad scan (``scan_id``, path, problem).
    """
    from brainaug.io.headers import check_nifti_header, check_plausible_size, is_nifti
    from brainaug.io.images import ImageValidationError, check_image_shape, read_image_shape

    def problem(image: str) -> str | None:
        try:
            if is_nifti(image):
                check_nifti_header(image, assume_orientation)
            shape = read_image_shape(image)
            check_plausible_size(shape, image)
            check_image_shape(shape, image)
        except ImageValidationError as err:
            return str(err)
        return None

    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        problems = list(pool.map(problem, df["image"]))
    bad = [(scan, msg) for scan, msg in zip(df["scan_id"], problems) if msg is not None]
    if bad:
        listed = "\n".join(f"  {scan}: {msg}" for scan, msg in bad[:max_listed])
        more = f"\n  ... and {len(bad) - max_listed} more" if len(bad) > max_listed else ""
        raise CohortError(f"{len(bad)} of {len(df)} images cannot be used:\n{listed}{more}")


def require_utf8(path: Path, what: str) -> None:
    """Refuse a table (a manifest, a BIDS ``.tsv``) that is not UTF-8, naming the line and the fix.

    A spreadsheet saved as "CSV" on Windows is often Latin-1/cp1252. We do not
    guess its encoding: a wrong guess silently changes subject IDs and image
    paths, while one save as "CSV UTF-8" fixes it for good. A UTF-8 byte-order
    mark (Excel's "CSV UTF-8") is accepted.

    Args:
        path: the table.
        what: how the message names it ("Manifest", "BIDS table").
    """
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        start = data.rfind(b"\n", 0, err.start) + 1
        column = err.start - start + 1
        end = data.find(b"\n", err.start)
        text = data[start: end if end != -1 else len(data)].decode("utf-8", errors="replace").rstrip("\r")
        raise CohortError(
            f"{what} {path} is not UTF-8: line {line}, column {column} has byte 0x{data[err.start]:02x} "
            f"({text!r}). Save the file as UTF-8 (e.g. 'CSV UTF-8' in Excel, or "
            f"`iconv -f latin1 -t utf-8`) and run again"
        ) from err
