"""Subject-level folds: deterministic, stratified, leak-free."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklearn.model_selection import StratifiedGroupKFold

from brainaug.cohort.table import subject_table
from brainaug.splits import (
    LeakageError,
    check_splits,
    fold_roles,
    fold_seed,
    make_splits,
    read_splits,
    repeat_seed,
    scans_for,
    write_splits,
)

CLASSES = ["CN", "MCI", "AD"]


def _cohort(per_class: dict[str, int], sessions: int = 1, seed: int = 0) -> pd.DataFrame:
    """Cohort table with ``sessions`` scans per subject (images are not touched by splits)."""
    rows = []
    rng = np.random.default_rng(seed)
    for name, n in per_class.items():
        for i in range(n):
            subject = f"{name}{i:02d}"
            for s in range(int(rng.integers(1, sessions + 1))):
                rows.append(
                    {
                        "scan_id": f"sub-{subject}_ses-M{12 * s:02d}",
                        "subject_id": subject,
                        "session_id": f"ses-M{12 * s:02d}",
                        "diagnosis": name,
                        "label": CLASSES.index(name),
                        "image": f"/data/{subject}_{s}.nii.gz",
                        "age": 70.0,
                        "sex": "F",
                    }
                )
    return pd.DataFrame(rows).sort_values("scan_id").reset_index(drop=True)


@pytest.fixture
def cohort() -> pd.DataFrame:
    return _cohort({"CN": 14, "MCI": 10, "AD": 7}, sessions=3)


def test_structure_and_invariants(cohort: pd.DataFrame) -> None:
    splits = make_splits(cohort, n_folds=6, val_fraction=0.2, seed=0)
    assert splits["classes"] == CLASSES
    assert splits["n_folds"] == 6 and splits["seed"] == 0
    assert [f["fold"] for f in splits["folds"]] == list(range(6))
    check_splits(splits, cohort)
    subjects = set(cohort["subject_id"])
    tests = [s for f in splits["folds"] for s in f["test"]]
    assert sorted(tests) == sorted(subjects)  # each subject in exactly one test fold
    diagnosis = cohort.drop_duplicates("subject_id").set_index("subject_id")["diagnosis"]
    for fold in splits["folds"]:
        roles = [set(fold[r]) for r in ("train", "val", "test")]
        assert sum(len(r) for r in roles) == len(set.union(*roles))  # pairwise disjoint
        assert set.union(*roles) == subjects
        for role in ("test", "val", "train"):
            assert set(diagnosis[fold[role]]) == set(CLASSES), (fold["fold"], role)
        # Test folds are balanced: floor or ceil of class size / folds.
        counts = diagnosis[fold["test"]].value_counts()
        assert counts["CN"] in (2, 3) and counts["MCI"] in (1, 2) and counts["AD"] in (1, 2)
        n_rest = len(subjects) - len(fold["test"])
        assert len(fold["val"]) == max(round(0.2 * n_rest), 3)


def test_sessions_stay_with_their_subject(cohort: pd.DataFrame) -> None:
    assert cohort.groupby("subject_id").size().max() > 1
    splits = make_splits(cohort, seed=3)
    for fold in splits["folds"]:
        parts = {r: scans_for(cohort, fold[r]) for r in ("train", "val", "test")}
        assert sum(len(p) for p in parts.values()) == len(cohort)
        for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
            assert set(parts[a]["subject_id"]).isdisjoint(parts[b]["subject_id"])
            assert set(parts[a]["scan_id"]).isdisjoint(parts[b]["scan_id"])


def test_deterministic_per_seed(cohort: pd.DataFrame) -> None:
    assert make_splits(cohort, seed=1) == make_splits(cohort.sample(frac=1, random_state=5), seed=1)
    assert make_splits(cohort, seed=1)["folds"] != make_splits(cohort, seed=2)["folds"]


def test_subject_label_is_first_session() -> None:
    """A converter (MCI at M00, AD at M12) is stratified as MCI."""
    cohort = _cohort({"CN": 2, "MCI": 2, "AD": 2})
    conv = cohort.iloc[[0]].copy()
    columns = ["scan_id", "subject_id", "session_id", "diagnosis", "label"]
    conv[columns] = ["sub-X_ses-M12", "X", "ses-M12", "AD", 2]
    base = conv.copy()
    base[["scan_id", "session_id", "diagnosis", "label"]] = ["sub-X_ses-M00", "ses-M00", "MCI", 1]
    cohort = pd.concat([cohort, conv, base], ignore_index=True)
    with pytest.raises(ValueError, match=r"Class 'CN' has 2 subjects; 3 folds need at least 3"):
        make_splits(cohort, n_folds=3)
    splits = make_splits(cohort, n_folds=2)
    check_splits(splits, cohort)
    # MCI has 3 subjects (X counts as MCI), so each test fold has 1 or 2 of them.
    for fold in splits["folds"]:
        mci = [s for s in fold["test"] if s.startswith("MCI") or s == "X"]
        assert len(mci) in (1, 2)


def test_too_few_subjects() -> None:
    cohort = _cohort({"CN": 6, "MCI": 6, "AD": 5})
    with pytest.raises(ValueError, match=r"Class 'AD' has 5 subjects; 6 folds need at least 6"):
        make_splits(cohort, n_folds=6)
    with pytest.raises(ValueError, match=r"Class 'AD' has 0 subjects"):
        make_splits(_cohort({"CN": 6, "MCI": 6}), n_folds=2, classes=CLASSES)


def test_smallest_case_puts_lone_subject_in_train() -> None:
    """2 subjects per class and 2 folds: one non-test subject per class, no validation possible."""
    cohort = _cohort({"CN": 2, "MCI": 2, "AD": 2})
    splits = make_splits(cohort, n_folds=2)
    check_splits(splits, cohort)
    for fold in splits["folds"]:
        assert fold["val"] == [] and len(fold["train"]) == 3


def test_bad_arguments(cohort: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"n_folds must be an integer >= 2, got 1"):
        make_splits(cohort, n_folds=1)
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\), got 0"):
        make_splits(cohort, val_fraction=0)
    with pytest.raises(ValueError, match=r"cohort lacks columns \['label'\]"):
        make_splits(cohort.drop(columns="label"))
    with pytest.raises(ValueError, match=r"repeats must be an integer >= 1, got 0"):
        make_splits(cohort, repeats=0)


def _leaky(cohort: pd.DataFrame, change) -> dict:
    splits = make_splits(cohort, seed=0)
    change(splits["folds"])
    return splits


def test_check_splits_catches_leaks(cohort: pd.DataFrame) -> None:
    def two_roles(folds):
        folds[0]["val"].append(folds[0]["test"][0])

    def twice_in_test(folds):
        folds[1]["train"].remove(folds[0]["test"][0])
        folds[1]["test"].append(folds[0]["test"][0])

    def unknown(folds):
        folds[2]["train"].append("ghost")

    def missing(folds):
        folds[3]["train"].pop()

    with pytest.raises(LeakageError, match=r"Fold 0: subject '\w+' is in both 'val' and 'test'"):
        check_splits(_leaky(cohort, two_roles), cohort)
    with pytest.raises(LeakageError, match=r"not in exactly one test fold .*: 2\}"):
        check_splits(_leaky(cohort, twice_in_test), cohort)
    with pytest.raises(LeakageError, match=r"Fold 2: subjects not in the cohort: \['ghost'\]"):
        check_splits(_leaky(cohort, unknown), cohort)
    with pytest.raises(LeakageError, match=r"Fold 3: cohort subjects in no role"):
        check_splits(_leaky(cohort, missing), cohort)


def test_write_read_round_trip(cohort: pd.DataFrame, tmp_path: Path) -> None:
    splits = make_splits(cohort, seed=0)
    write_splits(splits, tmp_path / "res" / "splits.json")
    assert read_splits(tmp_path / "res" / "splits.json") == splits
    assert [p.name for p in (tmp_path / "res").iterdir()] == ["splits.json"]
    (tmp_path / "bad.json").write_text('{"folds": []}')
    message = r"bad\.json is not a splits file: missing keys \['classes', 'seed', 'n_folds'\]"
    with pytest.raises(ValueError, match=message):
        read_splits(tmp_path / "bad.json")


def test_scans_for_rejects_unknown_subjects(cohort: pd.DataFrame) -> None:
    assert scans_for(cohort, ["CN00"])["subject_id"].unique().tolist() == ["CN00"]
    with pytest.raises(ValueError, match=r"Subjects not in the cohort: \['nobody'\]"):
        scans_for(cohort, ["CN00", "nobody"])


def test_one_fold_seed_gives_each_caller_its_former_seed():
    """The splits' and the classifier's per-fold seeds now come from one function; the
    values must stay those of the two derivations it replaced (byte-identical outputs)."""
    from brainaug.classify.fold_data import classifier_seed
    from brainaug.splits import fold_seed

    for base in (0, 1, 42, 2**31 + 5):
        for fold in range(10):
            state = int(np.random.SeedSequence([base, fold]).generate_state(1)[0])
            assert fold_seed(base, fold) == state
            assert classifier_seed(base, fold) == state % (2**31)


def test_repeat_seed_keeps_repeat_0_and_derives_distinct_others():
    for base in (0, 1, 42, 2**31 + 5):
        assert repeat_seed(base, 0) == base
        derived = [repeat_seed(base, r) for r in range(1, 20)]
        assert len(set(derived + [base])) == 20 and all(0 <= d < 2**31 for d in derived)
        assert derived[0] == int(np.random.SeedSequence(base, spawn_key=(1,)).generate_state(1)[0]) % 2**31
    assert repeat_seed(0, 1) != repeat_seed(1, 1)
    with pytest.raises(ValueError, match="seed and repeat must be >= 0"):
        repeat_seed(0, -1)


def test_repeat_0_is_the_single_run(cohort: pd.DataFrame) -> None:
    """A one-repeat run keeps its folds: StratifiedGroupKFold(seed) and validation seeds fold_seed(seed, k)."""
    subjects = subject_table(cohort)
    ids, labels = subjects["subject_id"].to_numpy(), subjects["label"].to_numpy()
    outer = StratifiedGroupKFold(n_splits=6, shuffle=True, random_state=7)
    expected_tests = [sorted(ids[test].tolist()) for _, test in outer.split(ids, labels, groups=ids)]
    single = make_splits(cohort, n_folds=6, seed=7)
    repeated = make_splits(cohort, n_folds=6, seed=7, repeats=3)
    assert single["repeats"] == 1 and single["repeat_seeds"] == [7]
    assert [sorted(f["test"]) for f in single["folds"]] == expected_tests
    assert repeated["folds"][:6] == single["folds"]
    assert [f["repeat"] for f in single["folds"]] == [0] * 6


def test_repeats_reshuffle_the_folds(cohort: pd.DataFrame) -> None:
    splits = make_splits(cohort, n_folds=3, seed=0, repeats=2)
    assert len(splits["folds"]) == 6
    assert [(f["repeat"], f["fold"]) for f in splits["folds"]] == [(r, k) for r in range(2) for k in range(3)]
    assert splits["repeat_seeds"] == [0, repeat_seed(0, 1)] and splits["repeat_seeds"][1] != 0
    check_splits(splits, cohort)  # every repeat is a partition of the subjects
    tests = {r: [frozenset(f["test"]) for f in splits["folds"] if f["repeat"] == r] for r in range(2)}
    assert set(tests[0]) != set(tests[1])
    for r in range(2):
        assert sorted(s for t in tests[r] for s in t) == sorted(set(cohort["subject_id"]))


def test_check_splits_checks_each_repeat(cohort: pd.DataFrame) -> None:
    splits = make_splits(cohort, n_folds=3, seed=0, repeats=2)
    moved = splits["folds"][4]["test"][0]
    splits["folds"][4]["test"].remove(moved)
    splits["folds"][4]["train"].append(moved)
    with pytest.raises(LeakageError, match=rf"not in exactly one test fold of repeat 1 .*'{moved}': 0"):
        check_splits(splits, cohort)
    splits = make_splits(cohort, n_folds=3, seed=0, repeats=2)
    splits["folds"][5]["val"].append(splits["folds"][5]["test"][0])
    with pytest.raises(LeakageError, match=r"Repeat 1 fold 2: subject '\w+' is in both 'val' and 'test'"):
        check_splits(splits, cohort)


def test_read_splits_reads_a_file_without_repeats_as_one_repeat(cohort: pd.DataFrame, tmp_path: Path) -> None:
    splits = make_splits(cohort, n_folds=3, seed=0)
    old = {k: v for k, v in splits.items() if k not in ("repeats", "repeat_seeds")}
    old["folds"] = [{k: v for k, v in f.items() if k != "repeat"} for f in splits["folds"]]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert read_splits(tmp_path / "old.json") == splits
    with pytest.raises(ValueError, match=r"old\.json has no fold 0 of repeat 1; it holds \(repeat, fold\) \[\(0, 0\)"):
        fold_roles(read_splits(tmp_path / "old.json"), 0, tmp_path / "old.json", repeat=1)


def test_read_splits_rejects_a_bad_repeat_grid(cohort: pd.DataFrame, tmp_path: Path) -> None:
    splits = make_splits(cohort, n_folds=3, seed=0, repeats=2)
    splits["folds"][4]["repeat"] = 0
    (tmp_path / "dup.json").write_text(json.dumps(splits))
    with pytest.raises(ValueError, match=r"dup\.json: fold 1 of repeat 0 is listed twice"):
        read_splits(tmp_path / "dup.json")
    splits["folds"][4]["repeat"] = 2
    (tmp_path / "out.json").write_text(json.dumps(splits))
    with pytest.raises(ValueError, match=r"out\.json: fold 1 of repeat 2 is outside repeats 0..1"):
        read_splits(tmp_path / "out.json")
    del splits["repeats"]
    (tmp_path / "half.json").write_text(json.dumps(splits))
    with pytest.raises(ValueError, match=r"half\.json: folds name a repeat but the file has no 'repeats' key"):
        read_splits(tmp_path / "half.json")


def test_each_repeat_gets_its_own_classifier_and_validation_seeds(cohort: pd.DataFrame) -> None:
    from brainaug.classify.fold_data import classifier_seed

    for base in (0, 3):
        seeds = {(r, k): classifier_seed(base, k, repeat=r) for r in range(3) for k in range(6)}
        assert len(set(seeds.values())) == 18
        assert all(seeds[(0, k)] == classifier_seed(base, k) == fold_seed(base, k) % 2**31 for k in range(6))
        assert seeds[(2, 1)] == fold_seed(repeat_seed(base, 2), 1) % 2**31
