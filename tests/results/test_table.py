"""Results table: collecting per-fold metrics, summarising, and writing csv/md/tex."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainaug.results.stats import corrected_interval, corrected_resampled_ttest, holm_adjust
from brainaug.results.table import collect_metrics, comparison_table, format_table, write_table

STRATEGIES = ["standard", "gan50"]
N_FOLDS = 3
ACC = {"standard": [0.70, 0.72, 0.68], "gan50": [0.74, 0.73, 0.72]}


def _write_metrics(root: Path, strategy: str, fold: int, acc: float, repeat: int = 0, bacc: float | None = None) -> None:
    bacc = acc - 0.02 if bacc is None else bacc
    scores = {"accuracy": acc, "balanced_accuracy": bacc, "auc_macro": None, "f1_macro": acc - 0.05}
    m = {
        "val": {**scores, "accuracy": acc + 0.01, "auc_macro": 0.8},
        "test": scores,
        "n_real_train": 40,
        "n_synthetic_train": 0 if strategy == "standard" else 40,
        "train_subjects": [f"s{i}" for i in range(20)],
        "val_subjects": [f"v{i}" for i in range(4)],
        "test_subjects": [f"t{i}" for i in range(5)],
    }
    d = root / strategy / f"repeat{repeat}" / f"fold{fold}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics.json").write_text(json.dumps(m))


@pytest.fixture()
def classify_dir(tmp_path: Path) -> Path:
    for s in STRATEGIES:
        for k in range(N_FOLDS):
            _write_metrics(tmp_path, s, k, ACC[s][k])
    return tmp_path


def test_collect_metrics_one_row_per_strategy_and_fold(classify_dir):
    df = collect_metrics(classify_dir, STRATEGIES, N_FOLDS)
    assert list(zip(df["strategy"], df["repeat"], df["fold"])) == [(s, 0, k) for s in STRATEGIES for k in range(N_FOLDS)]
    assert df.loc[4, "test_accuracy"] == pytest.approx(0.73)
    assert df.loc[4, "val_accuracy"] == pytest.approx(0.74)
    assert np.isnan(df.loc[0, "test_auc_macro"])  # null in the file
    assert df.loc[0, "n_train_subjects"] == 20 and df.loc[0, "n_test_subjects"] == 5
    assert df.loc[3, "n_synthetic_train"] == 40


def test_missing_file_is_named(classify_dir):
    (classify_dir / "gan50" / "repeat0" / "fold2" / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"strategy 'gan50' repeat 0 fold 2: .*gan50/repeat0/fold2/metrics.json"):
        collect_metrics(classify_dir, STRATEGIES, N_FOLDS)


def test_missing_key_is_named(classify_dir):
    p = classify_dir / "standard" / "repeat0" / "fold1" / "metrics.json"
    m = json.loads(p.read_text(encoding="utf-8"))
    del m["test"]["f1_macro"]
    p.write_text(json.dumps(m))
    with pytest.raises(ValueError, match=r"fold1/metrics.json: test.f1_macro is missing"):
        collect_metrics(classify_dir, STRATEGIES, N_FOLDS)


def test_comparison_table_means_sds_and_ttest(classify_dir):
    per_fold = collect_metrics(classify_dir, STRATEGIES, N_FOLDS)
    table = comparison_table(per_fold)
    assert list(table.columns[:5]) == ["strategy", "val_accuracy", "val_accuracy_sd", "test_accuracy", "test_accuracy_sd"]
    assert {
        "test_balanced_accuracy_ci_low", "difference_vs_baseline", "difference_ci_high", "t_vs_baseline",
        "p_vs_baseline", "p_holm", "test_balanced_accuracy_sd", "test_auc_macro", "test_f1_macro",
    } <= set(table.columns)
    assert list(table["strategy"]) == STRATEGIES
    gan = table.set_index("strategy").loc["gan50"]
    assert gan["test_accuracy"] == pytest.approx(np.mean(ACC["gan50"]))
    assert gan["test_accuracy_sd"] == pytest.approx(np.std(ACC["gan50"], ddof=1))
    # The test runs on balanced accuracy (accuracy - 0.02 in these files): the same differences.
    bacc = {s: np.subtract(ACC[s], 0.02) for s in STRATEGIES}
    expected = corrected_resampled_ttest(bacc["gan50"] - bacc["standard"], n_train=20, n_test=5)
    assert gan["t_vs_baseline"] == pytest.approx(expected.t)
    assert gan["p_vs_baseline"] == pytest.approx(expected.p)
    assert gan["p_holm"] == pytest.approx(expected.p)  # one comparison: nothing to adjust
    assert gan["difference_vs_baseline"] == pytest.approx(np.mean(bacc["gan50"] - bacc["standard"]))
    assert (gan["difference_ci_low"], gan["difference_ci_high"]) == pytest.approx((expected.ci_low, expected.ci_high))
    interval = corrected_interval(bacc["gan50"], n_train=20, n_test=5)
    assert (gan["test_balanced_accuracy_ci_low"], gan["test_balanced_accuracy_ci_high"]) == pytest.approx(interval)
    assert gan["n_folds"] == N_FOLDS and gan["n_repeats"] == 1
    base = table.set_index("strategy").loc["standard"]
    assert np.isnan(base[["t_vs_baseline", "p_vs_baseline", "p_holm", "difference_vs_baseline"]].astype(float)).all()
    assert not np.isnan(base["test_balanced_accuracy_ci_low"])


def test_repeats_pair_by_repeat_and_fold_and_holm_adjusts(tmp_path):
    """2 repeats x 3 folds: six paired differences, df 5; Holm over the two non-baseline strategies."""
    bacc = {
        "standard": [[0.60, 0.62, 0.58], [0.61, 0.59, 0.63]],
        "gan50": [[0.66, 0.63, 0.64], [0.65, 0.66, 0.64]],
        "gan33": [[0.61, 0.60, 0.60], [0.60, 0.62, 0.62]],
    }
    for s, per_repeat in bacc.items():
        for r, values in enumerate(per_repeat):
            for k, value in enumerate(values):
                _write_metrics(tmp_path, s, k, value + 0.02, repeat=r, bacc=value)
    per_fold = collect_metrics(tmp_path, list(bacc), n_folds=3, repeats=2)
    assert len(per_fold) == 18 and set(per_fold["repeat"]) == {0, 1}
    table = comparison_table(per_fold, baseline="standard").set_index("strategy")
    raw = {}
    for s in ("gan50", "gan33"):
        d = np.ravel(bacc[s]) - np.ravel(bacc["standard"])
        res = corrected_resampled_ttest(d, n_train=20, n_test=5)
        assert res.df == 5
        assert table.loc[s, "t_vs_baseline"] == pytest.approx(res.t)
        assert table.loc[s, "p_vs_baseline"] == pytest.approx(res.p)
        raw[s] = res.p
        assert table.loc[s, "n_folds"] == 6 and table.loc[s, "n_repeats"] == 2
    holm = holm_adjust([raw["gan50"], raw["gan33"]])
    assert table.loc["gan50", "p_holm"] == pytest.approx(holm[0])
    assert table.loc["gan33", "p_holm"] == pytest.approx(holm[1])
    assert raw["gan50"] < raw["gan33"] and table.loc["gan50", "p_holm"] == pytest.approx(2 * raw["gan50"])
    # Pairing is by (repeat, fold): a strategy missing one of the baseline's folds cannot be compared.
    short = per_fold.drop(per_fold.index[(per_fold["strategy"] == "gan33") & (per_fold["repeat"] == 1)][:1])
    with pytest.raises(ValueError, match=r"Strategy 'gan33' has \(repeat, fold\) .* but baseline 'standard' has"):
        comparison_table(short)


def test_unknown_baseline_is_an_error(classify_dir):
    per_fold = collect_metrics(classify_dir, ["gan50"], N_FOLDS)
    with pytest.raises(ValueError, match="Baseline strategy 'standard' is not among"):
        comparison_table(per_fold)
    assert np.isnan(comparison_table(per_fold, baseline=None).loc[0, "p_vs_baseline"])


def test_write_table_formats_percentages(classify_dir, tmp_path):
    table = comparison_table(collect_metrics(classify_dir, STRATEGIES, N_FOLDS))
    paths = write_table(table, tmp_path / "tables")
    assert sorted(p.name for p in paths.values()) == [
        "augmentation_comparison.csv",
        "augmentation_comparison.md",
        "augmentation_comparison.tex",
    ]
    back = pd.read_csv(paths["csv"])
    assert back.loc[1, "test_accuracy"] == pytest.approx(table.loc[1, "test_accuracy"])
    md = paths["md"].read_text(encoding="utf-8")
    assert "| gan50 " in md and "73.0" in md and "Test accuracy (%)" in md
    assert "Δ balanced accuracy vs standard (pp)" in md and "p (Holm)" in md and "95% CI" in md
    shown = format_table(table)
    assert shown.iloc[1, list(shown.columns).index("Δ balanced accuracy vs standard (pp)")] == "+3.0"
    tex = paths["tex"].read_text(encoding="utf-8")
    assert "\\toprule" in tex and "gan50" in tex and "73.0" in tex and "$\\Delta$" in tex
    assert not list((tmp_path / "tables").glob(".*"))  # no temporary files left behind


def test_a_control_run_is_labelled_in_every_format(classify_dir, tmp_path):
    table = comparison_table(collect_metrics(classify_dir, STRATEGIES, N_FOLDS))
    banner = "CONTROL RUN - NOT A RESULT: diagnoses shuffled (controls.shuffle_labels, seed 0)"
    paths = write_table(table, tmp_path / "tables", control=banner)
    back = pd.read_csv(paths["csv"])
    assert (back["control"] == banner).all()
    assert paths["md"].read_text(encoding="utf-8").startswith(f"**{banner}**")
    assert "CONTROL RUN - NOT A RESULT: diagnoses shuffled (controls.shuffle\\_labels" in paths["tex"].read_text(encoding="utf-8")
    # A real run's table has no control column.
    plain = write_table(table, tmp_path / "plain")
    assert "control" not in pd.read_csv(plain["csv"]).columns
