"""Read the T1-weighted scans of a BIDS dataset, with diagnoses, into the cohort table.

Scans: ``sub-*/[ses-*/]anat/*_T1w.nii[.gz]``; every run/acquisition is its own
scan, named by its file's entities (``sub-01_ses-M00_run-02``). Diagnoses come
from ``participants.tsv`` (one per subject) or ``sub-*/sub-*_sessions.tsv`` (one
per session, which wins when both have a value): ADNI converted by Clinica
stores it as ``diagnosis``, ``diagnosis_bl`` or ``diagnosis_sc``, hence the
configurable column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from brainaug.cohort.table import ORIGIN_COLUMN, CohortError, finalize_cohort, require_utf8

__all__ = ["read_bids", "find_t1w"]

_T1W = re.compile(r"^(?P<entities>sub-[^_]+(?:_[^_]+-[^_]+)*)_T1w\.nii(?:\.gz)?$")


def _prefixed(value: str, prefix: str) -> str:
    value = str(value).strip()
    return value if not value or value.startswith(prefix) else prefix + value


def find_t1w(root: str | Path) -> list[Path]:
    """All ``*_T1w.nii[.gz]`` files in ``sub-*/anat`` or ``sub-*/ses-*/anat``, sorted."""
    root = Path(root)
    found = list(root.glob("sub-*/anat/*_T1w.nii*")) + list(root.glob("sub-*/ses-*/anat/*_T1w.nii*"))
    return sorted(p for p in found if _T1W.match(p.name))


def _read_tsv(path: Path) -> pd.DataFrame:
    require_utf8(path, "BIDS table")  # so pandas cannot meet a byte it cannot decode
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise CohortError(f"Cannot parse {path}: {err}") from err
    df.columns = [str(c).strip() for c in df.columns]
    # BIDS writes "n/a" for a missing value: treat it as empty (a missing
    # per-session diagnosis then falls back to participants.tsv).
    return df.apply(lambda col: col.str.strip().replace("n/a", ""))


def _participants(root: Path) -> pd.DataFrame | None:
    path = root / "participants.tsv"
    if not path.is_file():
        return None
    df = _read_tsv(path)
    if "participant_id" not in df.columns:
        raise CohortError(f"{path} has no participant_id column; columns found: {list(df.columns)}")
    df["participant_id"] = df["participant_id"].map(lambda v: _prefixed(v, "sub-"))
    dup = df["participant_id"].duplicated()
    if dup.any():
        raise CohortError(f"{path}: participant {df.loc[dup, 'participant_id'].iloc[0]!r} is listed twice")
    return df.set_index("participant_id")


def _sessions(root: Path, subject: str) -> tuple[Path, pd.DataFrame] | None:
    path = root / subject / f"{subject}_sessions.tsv"
    if not path.is_file():
        return None
    df = _read_tsv(path)
    if "session_id" not in df.columns:
        raise CohortError(f"{path} has no session_id column; columns found: {list(df.columns)}")
    df["session_id"] = df["session_id"].map(lambda v: _prefixed(v, "ses-"))
    return path, df.drop_duplicates("session_id", keep="first").set_index("session_id")


def read_bids(
    root: str | Path,
    classes: Sequence[str],
    label_column: str = "diagnosis",
    n_folds: int | None = None,
    exclude_diagnoses: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a BIDS dataset's T1w scans and diagnoses into the validated cohort table.

    Args:
        root: BIDS dataset folder.
        classes: diagnoses to keep, in label order.
        label_column: diagnosis column in ``participants.tsv`` and/or the
            ``sessions.tsv`` files.
        n_folds: when given, every class needs at least this many subjects.
        exclude_diagnoses: diagnoses whose scans are dropped instead of rejected.

    Returns:
        The cohort table: ``subject_id`` is ``sub-<label>``, ``session_id``
        ``ses-<label>`` (empty without sessions), ``scan_id`` the file name's
        entities without ``_T1w``. ``age``/``sex`` come from the session row
        when it has them, else from ``participants.tsv``.

    Raises:
        CohortError: no T1w files, missing label column (listing the columns
            that exist), a scan without a diagnosis, or a row-level problem
            (named by its file).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CohortError(f"BIDS folder not found: {root}")
    files = find_t1w(root)
    if not files:
        raise CohortError(
            f"No T1w images under {root}: expected sub-*/anat/*_T1w.nii[.gz] or "
            "sub-*/ses-*/anat/*_T1w.nii[.gz]"
        )
    participants = _participants(root)
    sessions = {s: _sessions(root, s) for s in sorted({f.relative_to(root).parts[0] for f in files})}

    has_label = participants is not None and label_column in participants.columns
    has_label = has_label or any(t is not None and label_column in t[1].columns for t in sessions.values())
    if not has_label:
        found: dict[str, object] = {"participants.tsv": "(missing)"}
        if participants is not None:
            found["participants.tsv"] = ["participant_id", *participants.columns]
        for table in sessions.values():
            if table is not None:
                found[table[0].name] = ["session_id", *table[1].columns]
        raise CohortError(
            f"No label column {label_column!r} in {root}/participants.tsv or any "
            f"sub-*_sessions.tsv; columns found: {found}"
        )

    rows = []
    for path in files:
        rel = path.relative_to(root)
        subject = rel.parts[0]
        session = rel.parts[1] if len(rel.parts) == 4 else ""
        entities = dict(part.partition("-")[::2] for part in _T1W.match(path.name)["entities"].split("_"))
        if "sub-" + entities["sub"] != subject or ("ses" in entities and "ses-" + entities["ses"] != session):
            raise CohortError(f"{path}: file name entities do not match its folder {rel.parent}")
        known = participants is not None and subject in participants.index
        p_row = participants.loc[subject] if known else None
        s_table = sessions[subject]
        s_row = s_table[1].loc[session] if s_table is not None and session in s_table[1].index else None

        def pick(column: str, s_row=s_row, p_row=p_row) -> str:
            for source in (s_row, p_row):
                if source is not None and column in source.index and str(source[column]).strip():
                    return str(source[column]).strip()
            return ""

        diagnosis = pick(label_column)
        if not diagnosis:
            raise CohortError(
                f"{path}: no {label_column!r} for {subject}"
                + (f" {session}" if session else "")
                + " in participants.tsv"
                + (f" or {s_table[0].name}" if s_table is not None else "")
            )
        scan_id = _T1W.match(path.name)["entities"]
        if session and "ses" not in entities:  # tolerate a file name without its ses- entity
            scan_id = scan_id.replace(subject, f"{subject}_{session}", 1)
        rows.append(
            {
                "scan_id": scan_id,
                "subject_id": subject,
                "session_id": session,
                "diagnosis": diagnosis,
                "image": str(path.resolve()),
                "age": pick("age"),
                "sex": pick("sex"),
                ORIGIN_COLUMN: str(path),
            }
        )
    return finalize_cohort(
        pd.DataFrame(rows), classes, root, n_folds=n_folds, exclude_diagnoses=exclude_diagnoses
    )
