"""Leakage checks: each violated invariant is reported with strategy, fold and subjects."""

from __future__ import annotations

import copy

import pytest

from brainaug.leakage import LeakageError, check_leakage

SPLITS = {
    "classes": ["CN", "AD"],
    "seed": 0,
    "n_folds": 2,
    "folds": [
        {"fold": 0, "train": ["s1", "s2", "s3"], "val": ["s4"], "test": ["s5", "s6"]},
        {"fold": 1, "train": ["s3", "s4", "s5"], "val": ["s6"], "test": ["s1", "s2"]},
    ],
}


def _records(splits: dict) -> tuple[dict, dict, dict]:
    """A clean run over ``splits``: every (repeat, fold)'s classifier and GAN records as the workflow writes them."""
    folds = {(f.get("repeat", 0), f["fold"]): f for f in splits["folds"]}
    classifiers = {
        (strategy, r, k): {
            "train_subjects": list(f["train"]),
            "val_subjects": list(f["val"]),
            "test_subjects": list(f["test"]),
            "n_real_train": 3,
            "n_synthetic_train": 3 if strategy == "gan50" else 0,
        }
        for strategy in ("standard", "gan50")
        for (r, k), f in folds.items()
    }
    gans = {key: {"train_subjects": list(f["train"])} for key, f in folds.items()}
    return splits, classifiers, gans


def _good():
    return _records(copy.deepcopy(SPLITS))


def test_clean_run_passes():
    check_leakage(*_good())


def test_test_subject_in_classifier_training():
    splits, clf, gan = _good()
    clf[("gan50", 0, 0)]["train_subjects"].append("s5")
    with pytest.raises(LeakageError, match=r"classifier 'gan50' fold 0: test subjects in the training set: s5"):
        check_leakage(splits, clf, gan)


def test_validation_subject_in_classifier_training():
    splits, clf, gan = _good()
    clf[("standard", 0, 1)]["train_subjects"].append("s6")
    with pytest.raises(LeakageError, match=r"classifier 'standard' fold 1: val subjects in the training set: s6"):
        check_leakage(splits, clf, gan)


def test_test_subject_in_gan_training():
    splits, clf, gan = _good()
    gan[(0, 0)]["train_subjects"].append("s6")
    with pytest.raises(LeakageError, match=r"GAN fold 0: trained on test subjects s6"):
        check_leakage(splits, clf, gan)


def test_validation_subject_in_gan_training():
    splits, clf, gan = _good()
    gan[(0, 1)]["train_subjects"].append("s6")
    with pytest.raises(LeakageError, match=r"GAN fold 1: trained on val subjects s6"):
        check_leakage(splits, clf, gan)


def test_gan_trained_outside_its_fold():
    splits, clf, gan = _good()
    gan[(0, 0)]["train_subjects"].append("stranger")
    with pytest.raises(LeakageError, match=r"GAN fold 0: trained on subjects outside the fold's train set: stranger"):
        check_leakage(splits, clf, gan)


def test_classifier_test_set_differs_from_splits():
    splits, clf, gan = _good()
    clf[("gan50", 0, 1)]["test_subjects"] = ["s1"]
    with pytest.raises(LeakageError, match=r"classifier 'gan50' fold 1: test subjects differ from splits.json; missing: s2"):
        check_leakage(splits, clf, gan)


def test_classifier_val_set_differs_from_splits():
    splits, clf, gan = _good()
    clf[("standard", 0, 0)]["val_subjects"] = ["s4", "s3"]
    with pytest.raises(LeakageError, match=r"'standard' fold 0: val subjects differ .*not in the fold's val set: s3"):
        check_leakage(splits, clf, gan)


def test_synthetic_data_without_gan_metrics_cannot_be_checked():
    splits, clf, gan = _good()
    del gan[(0, 1)]
    with pytest.raises(LeakageError, match=r"'gan50' fold 1: used 3 synthetic volumes but no GAN metrics"):
        check_leakage(splits, clf, gan)


def test_inconsistent_splits_are_reported():
    splits, clf, gan = _good()
    splits["folds"][0]["val"].append("s5")
    with pytest.raises(LeakageError, match=r"splits.json fold 0: subjects in both val and test: s5"):
        check_leakage(splits, {}, {})


def test_subject_tested_twice():
    splits, _, _ = _good()
    splits["folds"][1]["test"].append("s5")
    splits["folds"][1]["train"].remove("s5")
    with pytest.raises(LeakageError, match=r"subject s5 is in the test sets of folds 0 and 1"):
        check_leakage(splits, {}, {})


def test_all_problems_listed_together():
    splits, clf, gan = _good()
    gan[(0, 0)]["train_subjects"].append("s5")
    clf[("standard", 0, 1)]["train_subjects"].append("s1")
    with pytest.raises(LeakageError, match=r"(?s)GAN fold 0.*classifier 'standard' fold 1"):
        check_leakage(splits, clf, gan)


def test_malformed_inputs_are_value_errors():
    splits, clf, gan = _good()
    del clf[("gan50", 0, 0)]["train_subjects"]
    with pytest.raises(ValueError, match=r"classifier 'gan50' fold 0 metrics.json: train_subjects must be a list"):
        check_leakage(splits, clf, gan)
    with pytest.raises(ValueError, match=r"fold 7 of repeat 0 is not in splits.json"):
        check_leakage(SPLITS, {("standard", 0, 7): _good()[1][("standard", 0, 0)]}, {})
    with pytest.raises(ValueError, match=r"keyed by \(strategy, repeat, fold\)"):
        check_leakage(SPLITS, {("standard", 0): _good()[1][("standard", 0, 0)]}, {})
    with pytest.raises(ValueError, match=r"keyed by \(repeat, fold\)"):
        check_leakage(SPLITS, {}, {0: {"train_subjects": []}})
    with pytest.raises(ValueError, match=r"non-empty 'folds' list"):
        check_leakage({"folds": []}, {}, {})


def _repeated():
    """Two repeats of the two-fold SPLITS: repeat 1 swaps which subjects are tested together."""
    splits = copy.deepcopy(SPLITS)
    splits["repeats"] = 2
    splits["folds"] = [{**f, "repeat": 0} for f in splits["folds"]] + [
        {"repeat": 1, "fold": 0, "train": ["s2", "s4", "s6"], "val": ["s5"], "test": ["s1", "s3"]},
        {"repeat": 1, "fold": 1, "train": ["s1", "s3", "s5"], "val": ["s2"], "test": ["s4", "s6"]},
    ]
    return _records(splits)


def test_every_repeat_and_fold_is_checked():
    splits, clf, gan = _repeated()
    check_leakage(splits, clf, gan)  # a subject tested once per repeat is fine
    gan[(1, 1)]["train_subjects"].append("s4")
    clf[("gan50", 1, 0)]["train_subjects"].append("s5")
    with pytest.raises(LeakageError, match=r"(?s)GAN repeat 1 fold 1: trained on test subjects s4.*"
                       r"classifier 'gan50' repeat 1 fold 0: val subjects in the training set: s5"):
        check_leakage(splits, clf, gan)


def test_repeat_1_classifier_is_checked_against_repeat_1_splits():
    """Repeat 0's subject lists are no alibi for repeat 1: each (repeat, fold) has its own."""
    splits, clf, gan = _repeated()
    clf[("standard", 1, 0)] = dict(clf[("standard", 0, 0)])
    with pytest.raises(LeakageError, match=r"classifier 'standard' repeat 1 fold 0: test subjects differ"):
        check_leakage(splits, clf, gan)
    splits, clf, gan = _repeated()
    del gan[(1, 0)]
    with pytest.raises(LeakageError, match=r"'gan50' repeat 1 fold 0: used 3 synthetic volumes but no GAN metrics"):
        check_leakage(splits, clf, gan)


def test_subject_tested_twice_within_a_repeat():
    splits, _, _ = _repeated()
    splits["folds"][3]["test"].append("s1")
    splits["folds"][3]["train"].remove("s1")
    with pytest.raises(LeakageError, match=r"subject s1 is in the test sets of folds 0 and 1 of repeat 1"):
        check_leakage(splits, {}, {})
