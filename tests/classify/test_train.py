from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from brainaug.classify.networks import build_classifier
from brainaug.classify.settings import ClassifierSettings
from brainaug.classify.loop import train_classifier
from brainaug.classify.predict import compute_metrics, evaluate, load_classifier, predict_proba
from brainaug.classify.train import run_fold
from brainaug.device import num_threads
from brainaug.leakage import LeakageError
from brainaug.strategies import Strategy

CLASSES = ["CN", "MCI", "AD"]
SIZE = 16
BLOB_CENTRES = [(4, 4, 8), (8, 11, 8), (11, 4, 8)]


def blob_volumes(labels: np.ndarray, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Head-like sphere at 0 on background -1, plus a bright blob whose place depends on the class."""
    r = np.arange(size) - (size - 1) / 2
    x, y, z = np.meshgrid(r, r, r, indexing="ij")
    head = x**2 + y**2 + z**2 <= (size / 2 - 1) ** 2
    g = np.stack(np.meshgrid(*(np.arange(size),) * 3, indexing="ij"))
    out = np.full((len(labels), size, size, size), -1.0, dtype=np.float32)
    for i, label in enumerate(labels):
        vol = np.where(head, 0.0, -1.0) + head * rng.normal(0, 0.15, head.shape)
        centre = np.array(BLOB_CENTRES[label])[:, None, None, None] + rng.integers(-1, 2, (3, 1, 1, 1))
        blob = ((g - centre) ** 2).sum(0) <= 4
        vol[blob & head] = 0.9
        out[i] = np.clip(vol, -1, 1)
    return out


def make_fold_data(tmp: Path, n_per_class: int = 8, seed: int = 0) -> dict[str, Path]:
    """Tiny dataset (3 classes, one subject with two sessions), splits.json fold 0, GAN output."""
    rng = np.random.default_rng(seed)
    rows = []
    for c, name in enumerate(CLASSES):
        for j in range(n_per_class):
            sub = f"sub-{name}{j:02d}"
            rows.append((f"{sub}_ses-01", sub, name, c))
            if j == 5:  # a training subject with two sessions
                rows.append((f"{sub}_ses-02", sub, name, c))
    index = pd.DataFrame(rows, columns=["scan_id", "subject_id", "diagnosis", "label"])
    volumes = blob_volumes(index["label"].to_numpy(), rng)
    ds = tmp / "dataset"
    ds.mkdir(parents=True)
    np.save(ds / "volumes.npy", volumes)
    index.to_csv(ds / "index.tsv", sep="\t", index=False)
    fold = {"fold": 0, "train": [], "val": [], "test": []}
    for name in CLASSES:
        subs = [f"sub-{name}{j:02d}" for j in range(n_per_class)]
        fold["test"] += subs[:2]
        fold["val"] += subs[2:4]
        fold["train"] += subs[4:]
    splits = tmp / "splits.json"
    splits.write_text(json.dumps({"classes": CLASSES, "seed": 0, "n_folds": 6, "folds": [fold]}))
    gan = tmp / "gan" / "fold0"
    gan.mkdir(parents=True)
    syn_labels = np.repeat(np.arange(3), 10)
    np.savez(
        gan / "synthetic.npz",
        volumes=blob_volumes(syn_labels, np.random.default_rng(seed + 1)),
        labels=syn_labels.astype(np.int64),
        classes=np.array(CLASSES),
    )
    (gan / "metrics.json").write_text(json.dumps({"train_subjects": fold["train"]}))
    return {"dataset": ds, "splits": splits, "synthetic": gan / "synthetic.npz", "fold": fold}


CFG = {
    "classifier": {
        "widths": [4, 4, 8, 8, 16],
        "max_epochs": 3,
        "patience": 2,
        "batch_size": 4,
        "lr": 1e-3,
        "seed": 3,
    },
    "strategies": None,  # the study's five
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: faster and steadier on a shared 2-core machine."""
    with num_threads(1):
        yield


@pytest.fixture(scope="module")
def fold_data(tmp_path_factory):
    return make_fold_data(tmp_path_factory.mktemp("fold"))


def _drop_timing(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("seconds",)}


def test_run_fold_writes_outputs_without_leakage(fold_data, tmp_path):
    out = tmp_path / "gan50_aug" / "fold0"
    metrics = run_fold(
        fold_data["dataset"], fold_data["splits"], 0, "gan50_aug", CFG, fold_data["synthetic"], out
    )
    for name in ("model.pt", "history.tsv", "predictions.tsv", "metrics.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.tmp"))
    written = json.loads((out / "metrics.json").read_text())
    assert written["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    fold = fold_data["fold"]
    # 12 train subjects, one per class with two sessions -> 15 real scans; 50 % doubles it
    assert written["n_real_train"] == 15 and written["n_synthetic_train"] == 15
    assert written["n_synthetic_train_per_class"] == {"CN": 5, "MCI": 5, "AD": 5}
    assert written["n_test"] == 6 and written["n_val"] == 6
    assert set(written["test_subjects"]) == set(fold["test"])
    assert not set(written["train_subjects"]) & set(written["test_subjects"])
    assert not set(written["train_subjects"]) & set(written["val_subjects"])
    for key in ("accuracy", "balanced_accuracy", "auc_macro", "f1_macro", "confusion_matrix"):
        assert key in written["val"] and key in written["test"]

    preds = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert list(preds.columns[:5]) == ["scan_id", "subject_id", "split", "true", "pred"]
    assert [f"prob_{c}" for c in CLASSES] == [c for c in preds.columns if c.startswith("prob_")]
    assert set(preds["split"]) == {"val", "test"}
    assert not set(preds["subject_id"]) & set(fold["train"])  # evaluated scans are held out, real
    assert set(preds.loc[preds.split == "test", "subject_id"]) == set(fold["test"])
    assert preds.filter(like="prob_").sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-5)
    test_rows = preds[preds.split == "test"]
    assert (test_rows["true"] == test_rows["pred"]).mean() == pytest.approx(metrics["test_accuracy"])

    history = pd.read_csv(out / "history.tsv", sep="\t")
    assert list(history.columns) == ["epoch", "steps", "train_loss", "train_acc", "val_loss", "val_acc", "val_bacc", "seconds"]
    assert len(history) == metrics["epochs_run"]

    # the checkpoint rebuilds the best-validation model
    model, ckpt = load_classifier(out / "model.pt")
    assert ckpt["classes"] == CLASSES and ckpt["strategy"]["name"] == "gan50_aug"
    volumes = np.load(fold_data["dataset"] / "volumes.npy")
    index = pd.read_csv(fold_data["dataset"] / "index.tsv", sep="\t")
    order = [index.index[index.scan_id == s][0] for s in test_rows["scan_id"]]
    proba = predict_proba(model, volumes[order])
    np.testing.assert_allclose(proba, test_rows.filter(like="prob_").to_numpy(), atol=1e-5)
    # a checkpoint from before the roll range was in mm still loads
    old = torch.load(out / "model.pt", weights_only=True)
    old["settings"] = {k: v for k, v in old["settings"].items() if not k.startswith("augment_")}
    old["settings"]["augment_max_shift"] = 2
    torch.save(old, tmp_path / "old.pt")
    np.testing.assert_allclose(predict_proba(load_classifier(tmp_path / "old.pt")[0], volumes[order]), proba)


@pytest.mark.parametrize(("strategy", "n_syn"), [("standard", 0), ("gan33", 7)])
def test_run_fold_synthetic_count_and_determinism(fold_data, tmp_path, strategy, n_syn):
    a = run_fold(fold_data["dataset"], fold_data["splits"], 0, strategy, CFG, fold_data["synthetic"], tmp_path / "a")
    b = run_fold(fold_data["dataset"], fold_data["splits"], 0, strategy, CFG, fold_data["synthetic"], tmp_path / "b")
    assert a["n_synthetic_train"] == n_syn  # gan33: round(0.33 * 15 / 0.67) = 7
    assert _drop_timing(a) == _drop_timing(b)
    ha = pd.read_csv(tmp_path / "a" / "history.tsv", sep="\t").drop(columns="seconds")
    hb = pd.read_csv(tmp_path / "b" / "history.tsv", sep="\t").drop(columns="seconds")
    pd.testing.assert_frame_equal(ha, hb)


def test_run_fold_refuses_leaky_splits(fold_data, tmp_path):
    splits = json.loads(fold_data["splits"].read_text())
    splits["folds"][0]["train"].append(splits["folds"][0]["test"][0])
    leaky = tmp_path / "splits.json"
    leaky.write_text(json.dumps(splits))
    with pytest.raises(LeakageError, match=r"Subjects appear in both train and test: \['sub-CN00'\]"):
        run_fold(fold_data["dataset"], leaky, 0, "standard", CFG, None, tmp_path / "out")
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_run_fold_refuses_gan_trained_on_test_subjects(fold_data, tmp_path):
    gan = tmp_path / "gan"
    gan.mkdir()
    (gan / "synthetic.npz").write_bytes(fold_data["synthetic"].read_bytes())
    subjects = fold_data["fold"]["train"] + fold_data["fold"]["test"][:1]
    (gan / "metrics.json").write_text(json.dumps({"train_subjects": subjects}))
    with pytest.raises(LeakageError, match=r"trained on validation/test subjects \['sub-CN00'\]"):
        run_fold(fold_data["dataset"], fold_data["splits"], 0, "gan50", CFG, gan / "synthetic.npz", tmp_path / "o")


def test_run_fold_input_errors(fold_data, tmp_path):
    with pytest.raises(ValueError, match=r"Unknown strategy 'gan99'; configured: \['standard'"):
        run_fold(fold_data["dataset"], fold_data["splits"], 0, "gan99", CFG, None, tmp_path)
    with pytest.raises(ValueError, match=r"has no fold 4; folds are \[0\]"):
        run_fold(fold_data["dataset"], fold_data["splits"], 4, "standard", CFG, None, tmp_path)
    with pytest.raises(ValueError, match="'gan50' uses synthetic data but no synthetic.npz was given"):
        run_fold(fold_data["dataset"], fold_data["splits"], 0, "gan50", CFG, None, tmp_path)


def test_separable_toy_problem_is_learned():
    rng = np.random.default_rng(0)
    train_y = np.repeat(np.arange(3), 16)
    val_y = np.repeat(np.arange(3), 6)
    train_x, val_x = blob_volumes(train_y, rng), blob_volumes(val_y, rng)
    settings = ClassifierSettings.from_config(dict(
        widths=(4, 8, 8, 16, 16), max_epochs=12, patience=12, batch_size=8, lr=2e-3, dropout=0.2, seed=1
    ))
    out = train_classifier(train_x, train_y, val_x, val_y, Strategy("standard"), settings, CLASSES)
    metrics = evaluate(out.model, val_x, val_y)
    assert metrics["accuracy"] >= 0.9
    torch.manual_seed(1)
    untrained = build_classifier(settings, len(CLASSES), SIZE)
    assert evaluate(untrained, val_x, val_y)["balanced_accuracy"] < 0.5  # it was learned, not given
    # the returned model is the best-validation one, selected by bacc then lower loss
    h = out.history
    best = h.sort_values(["val_bacc", "val_loss"], ascending=[False, True]).iloc[0]
    assert out.best_epoch == int(best["epoch"])
    assert metrics["balanced_accuracy"] == pytest.approx(best["val_bacc"])
    assert metrics["loss"] == pytest.approx(best["val_loss"], rel=1e-4)


@pytest.mark.parametrize(("selection", "expected"), [("balanced_accuracy", 1), ("loss", 2)])
def test_selection_picks_the_epoch_of_its_score(monkeypatch, selection, expected):
    """A lucky balanced accuracy (epoch 1) wins under the study's rule; the lowest loss (epoch 2) under loss."""
    import brainaug.classify.loop as loop

    scripted = iter([(0.7, 1.0), (0.5, 0.6), (0.5, 0.8), (0.4, 0.9)])

    def fake_metrics(y_true, proba, n_classes):
        bacc, loss = next(scripted)
        return {"loss": loss, "accuracy": bacc, "balanced_accuracy": bacc}

    monkeypatch.setattr(loop, "compute_metrics", fake_metrics)
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 2)
    x = blob_volumes(y, rng)
    settings = ClassifierSettings.from_config(dict(
        widths=(2, 2, 2, 2, 2), max_epochs=4, min_epochs=1, patience=2, batch_size=6, selection=selection,
    ))
    out = train_classifier(x, y, x, y, Strategy("standard"), settings, CLASSES)
    assert out.best_epoch == expected
    assert out.epochs_run == min(4, expected + 2)  # early stopping counts from the same epoch


def test_selection_key_orders_scores():
    from brainaug.classify.loop import selection_key

    # balanced accuracy first, the lower loss breaks ties; loss first, the higher bacc breaks ties
    assert selection_key(0.6, 0.9, "balanced_accuracy") > selection_key(0.5, 0.1, "balanced_accuracy")
    assert selection_key(0.6, 0.8, "balanced_accuracy") > selection_key(0.6, 0.9, "balanced_accuracy")
    assert selection_key(0.5, 0.1, "loss") > selection_key(0.6, 0.9, "loss")
    assert selection_key(0.6, 0.5, "loss") > selection_key(0.5, 0.5, "loss")
    with pytest.raises(ValueError, match="selection must be"):
        selection_key(0.5, 0.5, "auc")


def test_classic_augmentation_changes_training_batches_only_when_asked():
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 4)
    x = blob_volumes(y, rng)
    settings = ClassifierSettings.from_config(dict(widths=(2, 2, 2, 2, 2), max_epochs=2, patience=2, batch_size=4))
    plain = train_classifier(x, y, x, y, Strategy("standard"), settings, CLASSES).history
    again = train_classifier(x, y, x, y, Strategy("standard"), settings, CLASSES).history
    aug = train_classifier(x, y, x, y, Strategy("aug", classic_augmentation=True), settings, CLASSES).history
    assert plain["train_loss"].tolist() == again["train_loss"].tolist()
    assert plain["train_loss"].tolist() != aug["train_loss"].tolist()


def test_early_stopping_respects_patience():
    rng = np.random.default_rng(1)
    train_y = rng.integers(0, 3, 12)
    val_y = rng.integers(0, 3, 6)
    x, vx = rng.normal(size=(12, SIZE, SIZE, SIZE)), rng.normal(size=(6, SIZE, SIZE, SIZE))
    settings = ClassifierSettings.from_config(dict(widths=(2, 2, 2, 2, 2), max_epochs=30, patience=2, batch_size=6, lr=1e-6))
    out = train_classifier(x.astype(np.float32), train_y, vx.astype(np.float32), val_y, Strategy("s"), settings, CLASSES)
    assert out.epochs_run < 30
    assert out.epochs_run - out.best_epoch == 2
    assert len(out.history) == out.epochs_run


def test_train_classifier_input_errors():
    x = np.zeros((4, SIZE, SIZE, SIZE), dtype=np.float32)
    s = ClassifierSettings.from_config(dict(max_epochs=1))
    with pytest.raises(ValueError, match=r"train_y must lie in \[0, 2\]"):
        train_classifier(x, np.array([0, 1, 2, 3]), x, np.zeros(4, dtype=int), Strategy("s"), s, CLASSES)
    with pytest.raises(ValueError, match="Need at least 1 validation volume"):
        train_classifier(x, np.zeros(4, dtype=int), x[:0], np.zeros(0, dtype=int), Strategy("s"), s, CLASSES)


def test_compute_metrics_perfect_and_absent_class():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    m = compute_metrics(y, proba)
    assert m["accuracy"] == 1.0 and m["balanced_accuracy"] == 1.0 and m["f1_macro"] == 1.0
    assert m["auc_macro"] == 1.0 and m["auc_per_class"][2] is None  # class 2 absent from y
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 0]]
    wrong = compute_metrics(np.array([0, 1]), np.array([[0.2, 0.1, 0.7], [0.6, 0.3, 0.1]]))
    assert wrong["accuracy"] == 0.0 and wrong["balanced_accuracy"] == 0.0
    assert wrong["loss"] == pytest.approx(-(np.log(0.2) + np.log(0.3)) / 2)
    with pytest.raises(ValueError, match=r"Expected proba of shape \(2, 3\)"):
        compute_metrics(np.array([0, 1]), np.zeros((3, 3)))


def test_auto_precision_is_fp32_on_cpu_and_bf16_on_cuda():
    from brainaug.classify.predict import classifier_precision

    assert classifier_precision("auto", torch.device("cpu")) is None
    assert classifier_precision("bf16", torch.device("cpu")) is torch.bfloat16
    assert classifier_precision("fp32", torch.device("cpu")) is None
