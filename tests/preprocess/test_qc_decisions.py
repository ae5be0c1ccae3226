"""preprocess.qc_outliers: stop, exclude or keep, decided before any training."""

from __future__ import annotations

import pandas as pd
import pytest

from brainaug.preprocess.qc import QCStopError, decide_outliers, summarise


def _summary() -> pd.DataFrame:
    rows = [{"scan_id": f"sub-{i:02d}", "correlation": 0.8 + 0.001 * i} for i in range(10)]
    rows.append({"scan_id": "sub-bad", "correlation": 0.12})
    return summarise(rows, min_correlation=0.5)


def test_stop_lists_flagged_scans_with_scores_and_the_other_choices() -> None:
    with pytest.raises(QCStopError, match=r"QC flagged 1 of 11 scans, and preprocess\.qc_outliers is 'stop'") as err:
        decide_outliers(_summary(), "stop", 0.5)
    text = str(err.value)
    assert "sub-bad: registration correlation 0.120, robust z" in text
    assert "correlation 0.120 < qc_min_correlation 0.5" in text
    assert "preprocess.qc_outliers: exclude" in text and "preprocess.qc_outliers: keep" in text


@pytest.mark.parametrize(("choice", "decision"), [("exclude", "excluded"), ("keep", "kept")])
def test_exclude_and_keep_are_recorded_with_the_reason(choice: str, decision: str) -> None:
    table = decide_outliers(_summary(), choice, 0.5)
    bad = table.set_index("scan_id").loc["sub-bad"]
    assert bad["decision"] == decision and bool(bad["flagged"])
    assert f"preprocess.qc_outliers: {choice}" in bad["reason"]
    assert (table.loc[table["scan_id"] != "sub-bad", "decision"] == "train").all()


def test_nothing_flagged_passes_with_stop() -> None:
    rows = [{"scan_id": f"s{i}", "correlation": 0.8} for i in range(4)]
    assert (decide_outliers(summarise(rows), "stop", 0.5)["decision"] == "train").all()


def test_unknown_choice() -> None:
    with pytest.raises(ValueError, match=r"preprocess\.qc_outliers must be one of \['stop', 'exclude', 'keep'\]"):
        decide_outliers(_summary(), "maybe", 0.5)
