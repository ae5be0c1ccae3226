"""Dementia classifier: classic augmentation, 3D CNNs, real + synthetic training sets,
and cross-validated training of one (strategy, fold)."""

from __future__ import annotations

from brainaug.classify.augment import (
    RandomStudyAugmentation,
    StudyAugmentationParams,
    apply_study_augmentation,
)
from brainaug.classify.networks import Conv5FC3, build_classifier, penultimate_features
from brainaug.classify.settings import ClassifierSettings
from brainaug.classify.loop import TrainOutput, train_classifier
from brainaug.classify.predict import evaluate, load_classifier, predict_proba
from brainaug.classify.train import run_fold
from brainaug.classify.trainset import build_training_set
from brainaug.leakage import LeakageError

__all__ = [
    "ClassifierSettings",
    "Conv5FC3",
    "LeakageError",
    "RandomStudyAugmentation",
    "StudyAugmentationParams",
    "TrainOutput",
    "apply_study_augmentation",
    "build_classifier",
    "build_training_set",
    "evaluate",
    "load_classifier",
    "penultimate_features",
    "predict_proba",
    "run_fold",
    "train_classifier",
]
