"""brainaug.results.front_page: the report's opening page holds the answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainaug.results.front_page import front_page_html


def _table() -> pd.DataFrame:
    names = ["standard", "gan50"]
    frame = pd.DataFrame({"strategy": names})
    for column in ("val_accuracy", "test_accuracy", "test_balanced_accuracy"):
        frame[column] = [0.6, 0.7]
        frame[f"{column}_sd"] = [0.05, 0.04]
    frame["difference_vs_baseline"] = [np.nan, 0.1]
    frame["p_holm"] = [np.nan, 0.04]
    frame["n_folds"] = 6
    return frame


def _png(tmp_path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = tmp_path / "f.png"
    plt.figure(figsize=(1, 1)).savefig(path)
    plt.close("all")
    return path


def _decisions(flagged: bool) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "scan_id": ["sub-01", "sub-02"],
            "correlation": [0.8, 0.12],
            "correlation_z": [0.0, -9.1],
            "flagged": [False, flagged],
            "decision": ["train", "excluded" if flagged else "train"],
            "reason": ["passed QC", "correlation 0.120 < qc_min_correlation 0.5; preprocess.qc_outliers: exclude" if flagged else "passed QC"],
        }
    )


def test_table_figure_checks_and_qc_are_on_the_page(tmp_path: Path) -> None:
    gan = pd.DataFrame(
        {
            "repeat": ["0", "all", "all"],
            "fold": ["0", "mean", "sd"],
            "judge_bacc_synthetic": [0.9, 0.9, 0.0],
            "judge_bacc_real_test": [0.7, 0.7, 0.0],
            "mmd": [0.1, 0.1, 0.0],
            "n_rejected_memorization": [3, 3, 0],
        }
    )
    page = front_page_html(
        table=_table(), figure_png=_png(tmp_path), qc_decisions=_decisions(True), qc_choice="exclude",
        classes=["CN", "AD"], baseline="standard", gan_quality=gan, n_classifier_runs=12, n_gans=6,
    )
    assert 'id="brainaug-comparison"' in page and ">gan50<" in page and ">standard<" in page
    assert 'src="data:image/png;base64,' in page
    assert "Leakage checks passed" in page and "Not a control run" in page
    assert "90.0 % (SD 0.0)" in page and "Chance</td><td>50.0 %" in page
    assert "QC flagged 1 of 2 scans (preprocess.qc_outliers: <b>exclude</b>)" in page
    assert "sub-02" in page and "excluded" in page


def test_control_run_and_no_gan_are_said(tmp_path: Path) -> None:
    page = front_page_html(
        table=_table().assign(control="CONTROL RUN - NOT A RESULT: x"), figure_png=_png(tmp_path),
        qc_decisions=_decisions(False), qc_choice="stop", classes=["CN", "AD"], baseline="standard",
        control="CONTROL RUN - NOT A RESULT: x",
    )
    assert page.count("CONTROL RUN - NOT A RESULT: x") == 2
    assert "no GAN was trained" in page
    assert "QC flagged 0 of 2 scans" in page


def test_how_often_each_subject_was_tested_is_said(tmp_path: Path) -> None:
    """One repeat is flagged as a ranking a second seed may change; three repeats are not."""
    common = dict(figure_png=_png(tmp_path), qc_decisions=_decisions(False), qc_choice="stop",
                  classes=["CN", "AD"], baseline="standard")
    one = front_page_html(table=_table().assign(n_repeats=1), **common)
    assert '<li class="warn" id="brainaug-repeats">Each subject was tested once (1 repeat of 6 folds).' in one
    assert "<code>cv.repeats</code> to 3 or more" in one
    three = front_page_html(table=_table().assign(n_repeats=3, n_folds=18), **common)  # n_folds counts k * r
    assert '<li class="ok" id="brainaug-repeats">Each subject was tested 3 times (3 repeats of 6 folds)' in three
    assert "cv.repeats" not in three
