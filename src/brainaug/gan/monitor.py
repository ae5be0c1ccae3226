"""What the generator's samples are worth, measured while it trains.

The losses of a WGAN say little about whether an "AD" sample looks like AD.
Every ``gan.monitor_every`` iterations the generator draws a few volumes per
class and four numbers are logged next to the losses (``losses.tsv``):

* ``judge_balanced_accuracy``: a judge classifier's balanced accuracy on the
  samples against the labels they were drawn for (label fidelity; chance is
  1 / n_classes). The judge is passed in as a function so that this package
  layer does not depend on the classifier's; the workflow uses the fold's
  real-data classifier, fitted on the fold's training subjects.
* ``mmd`` and ``ms_ssim_synthetic`` against the fold's training volumes
  (realism and diversity, as in :mod:`brainaug.gan.quality`).
* ``nn_ratio``: median distance from a sample to its nearest training volume,
  over the median leave-one-out distance between training volumes. Near 1,
  samples sit among real anatomy; far above, they are off the data; near 0,
  they are copies. Only training volumes are used: no held-out subject is
  needed to watch a run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from brainaug.gan.networks import Generator
from brainaug.gan.quality import mmd_score, ms_ssim_diversity, ms_ssim_params, nearest_neighbour_distances
from brainaug.gan.synthesize import synthesize

__all__ = ["MONITOR_COLUMNS", "Judge", "SampleMonitor"]

#: Columns the monitor adds to ``losses.tsv`` (empty on iterations it did not run).
MONITOR_COLUMNS: tuple[str, ...] = ("judge_balanced_accuracy", "mmd", "ms_ssim_synthetic", "nn_ratio")

#: Volumes ``(N, S, S, S)`` -> predicted labels ``(N,)``.
Judge = Callable[[np.ndarray], np.ndarray]


@dataclass
class SampleMonitor:
    """Draws ``n_per_class`` samples per class and scores them (see the module docstring).

    Args:
        real: the fold's training volumes ``(N, S, S, S)``.
        classes: class names in label order.
        judge: predicts labels of volumes; None leaves ``judge_balanced_accuracy`` empty.
        n_per_class: samples per class and evaluation (fixed z: curves compare like with like).
        seed: seeds z and the metric draws, so a resumed run logs the same numbers.
    """

    real: np.ndarray
    classes: Sequence[str]
    judge: Judge | None = None
    n_per_class: int = 8
    seed: int = 0
    _train_nn: float = field(init=False, default=float("nan"))

    def __post_init__(self) -> None:
        if len(self.real) >= 2:
            loo = nearest_neighbour_distances(self.real, self.real, exclude_identical_index=True)
            self._train_nn = float(np.median(loo))

    def __call__(self, generator: Generator) -> dict[str, float]:
        synthetic, labels = synthesize(generator, list(self.classes), self.n_per_class, seed=self.seed)
        return score_samples(synthetic, labels, self.real, self._train_nn, self.judge, self.seed)


def score_samples(
    synthetic: np.ndarray,
    labels: np.ndarray,
    real: np.ndarray,
    train_nn: float,
    judge: Judge | None,
    seed: int,
) -> dict[str, float]:
    """The monitor's four numbers for one set of samples (NaN where they cannot be computed)."""
    rng = np.random.default_rng(seed)
    fidelity = float("nan")
    if judge is not None:
        fidelity = float(balanced_accuracy_score(labels, judge(synthetic)))
    mmd = mmd_score(real, synthetic, rng)
    ms_ssim = ms_ssim_diversity(synthetic, rng, max_pairs=128, params=ms_ssim_params(real.shape[1:]))
    nn = nearest_neighbour_distances(synthetic, real)
    ratio = float(np.median(nn) / train_nn) if train_nn > 0 else float("nan")
    return {
        "judge_balanced_accuracy": fidelity,
        "mmd": float("nan") if mmd is None else mmd,
        "ms_ssim_synthetic": float("nan") if ms_ssim is None else ms_ssim,
        "nn_ratio": ratio,
    }
