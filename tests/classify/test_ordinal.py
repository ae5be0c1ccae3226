"""The ordinal head: ordered classes from one score, exact probabilities, and a learnable model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainaug.classify.loop import train_classifier
from brainaug.classify.networks import build_classifier, penultimate_features
from brainaug.classify.ordinal import CumulativeLink, log_class_probabilities
from brainaug.classify.predict import compute_metrics, load_classifier, predict_proba
from brainaug.classify.settings import ClassifierSettings
from brainaug.device import num_threads
from brainaug.strategies import Strategy

CLASSES = ["CN", "MCI", "AD"]
SIZE = 16


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with num_threads(1):
        yield


def _settings(**extra) -> ClassifierSettings:
    return ClassifierSettings.from_config(dict(
        head="ordinal", widths=(4, 8, 8, 16, 16), pooling="average", pooled_blocks=3, dropout=0.0, **extra
    ))


def test_probabilities_are_exact_and_finite_for_any_score():
    cuts = torch.tensor([-1.5, 0.5, 3.0])
    score = torch.tensor([-1e4, -40.0, -2.0, 0.0, 0.7, 2.9, 40.0, 1e4])
    logp = log_class_probabilities(score, cuts)
    assert logp.shape == (8, 4) and torch.isfinite(logp).all()
    torch.testing.assert_close(logp.exp().sum(1), torch.ones(8))
    # where plain differences of sigmoids are accurate, they agree
    cdf = torch.sigmoid(cuts[None, :] - score[2:6, None].double())
    plain = torch.diff(torch.cat([torch.zeros(4, 1), cdf, torch.ones(4, 1)], 1), dim=1)
    torch.testing.assert_close(logp[2:6].double().exp(), plain)


def test_two_classes_are_logistic_regression():
    score, cut = torch.linspace(-5, 5, 11), torch.tensor([0.8])
    logp = log_class_probabilities(score, cut)
    torch.testing.assert_close(logp[:, 1].exp(), torch.sigmoid(score - 0.8))


def test_the_class_follows_the_score_in_order_and_every_class_is_reachable():
    """At initialisation the middle class owns a band of the score where it is most probable."""
    head = CumulativeLink(torch.nn.Identity(), len(CLASSES))
    score = torch.linspace(-20, 20, 401)
    with torch.no_grad():
        predicted = head(score[:, None]).argmax(1)
    assert (torch.diff(predicted) >= 0).all()
    assert set(predicted.tolist()) == {0, 1, 2}
    assert head.cut_points().tolist() == pytest.approx([-2.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 classes, got 1"):
        CumulativeLink(torch.nn.Identity(), 1)


def _severity_volumes(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark 'ventricle' in a noisy head whose radius grows with the class, as atrophy does."""
    r = np.arange(SIZE) - (SIZE - 1) / 2
    d2 = sum(a**2 for a in np.meshgrid(r, r, r, indexing="ij"))
    out = np.empty((len(labels), SIZE, SIZE, SIZE), np.float32)
    for i, label in enumerate(labels):
        radius = 2.0 + 1.2 * label + rng.uniform(-0.3, 0.3)
        vol = np.where(d2 <= (SIZE / 2 - 1) ** 2, 0.3, -1.0) + rng.normal(0, 0.1, d2.shape)
        vol[d2 <= radius**2] = -0.8
        out[i] = vol
    return out


def test_an_ordered_problem_is_learned_saved_and_reloaded(tmp_path):
    rng = np.random.default_rng(0)
    train_y, val_y = np.repeat(np.arange(3), 12), np.repeat(np.arange(3), 6)
    train_x, val_x = _severity_volumes(train_y, rng), _severity_volumes(val_y, rng)
    settings = _settings(max_epochs=15, min_epochs=15, patience=15, batch_size=6, lr=2e-3, seed=0)
    out = train_classifier(train_x, train_y, val_x, val_y, Strategy("standard"), settings, CLASSES)
    proba = predict_proba(out.model, val_x, 6, torch.device("cpu"), None)
    assert compute_metrics(val_y, proba, 3)["balanced_accuracy"] >= 0.9
    assert isinstance(out.model, CumulativeLink)
    with torch.no_grad():
        scores = out.model.score(torch.from_numpy(val_x).unsqueeze(1)).numpy()
    assert scores[val_y == 0].mean() < scores[val_y == 1].mean() < scores[val_y == 2].mean()
    assert penultimate_features(out.model, torch.from_numpy(val_x[:2]).unsqueeze(1)).shape == (2, 16)

    path = tmp_path / "model.pt"
    torch.save(dict(state_dict=out.state_dict, settings=settings.to_dict(), classes=CLASSES, image_size=SIZE), path)
    reloaded, _ = load_classifier(path)
    np.testing.assert_allclose(predict_proba(reloaded, val_x, 6, torch.device("cpu"), None), proba, atol=1e-6)


def test_the_softmax_head_stays_the_default():
    assert ClassifierSettings.from_config({}).head == "softmax"
    torch.manual_seed(0)
    model = build_classifier(ClassifierSettings.from_config(dict(widths=(2, 2, 2, 2, 2))), 3, SIZE)
    assert not isinstance(model, CumulativeLink) and model(torch.zeros(2, 1, SIZE, SIZE, SIZE)).shape == (2, 3)
