"""A cumulative-link (ordinal) output for diagnoses that lie on one scale, as CN < MCI < AD.

Why: a softmax head gives each class its own direction in feature space, so a
few dozen training subjects leave many ways to separate three classes, and
the middle class (MCI) can be carved out anywhere. Trained from four seeds on
fixed splits, the embedded cohort's softmax classifier put 33 of 60 test
subjects in different classes, and one fold's test score moved by 12 points
(SD); with this head, 16 of 60 and 5 points (benchmarks/README.md, "An
ordinal head and a cohort of 120"). The diagnoses are stages of one process,
so the network here gives one score per volume, and learned cut points on
that score divide it into the classes, in order (McCullagh's proportional-odds
model):

    P(y <= k | x) = sigmoid(c_k - s(x)),   c_0 < c_1 < ... < c_{K-2}.

The module returns log class probabilities. Their softmax is the probabilities
themselves, so cross-entropy on them is this model's negative log-likelihood
and everything downstream (prediction, metrics, the GAN judge) reads them like
logits. It only makes sense when ``data.classes`` lists the diagnoses in order.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CumulativeLink"]

#: Initial distance between neighbouring cut points. The middle class can reach at most
#: tanh(gap / 4); at 0.7 (softplus(0)) no MCI subject was ever predicted, at 4 it is 0.76.
_INITIAL_GAP = 4.0
#: Smallest distance between cut points, so every class keeps a band of the score.
_MIN_GAP = 1e-3


class CumulativeLink(nn.Module):
    """Ordered classes from one score: wraps ``net`` (one output) with K - 1 learned cut points.

    Args:
        net: maps ``(B, 1, S, S, S)`` to one score per volume, ``(B, 1)``.
        n_classes: K >= 2, the number of ordered classes.
    """

    def __init__(self, net: nn.Module, n_classes: int) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"An ordinal output needs at least 2 classes, got {n_classes}")
        self.net = net
        self.n_classes = int(n_classes)
        # Cut points centred on 0, _INITIAL_GAP apart; later ones as positive gaps after the first.
        self.first_cut = nn.Parameter(torch.tensor([-_INITIAL_GAP * (n_classes - 2) / 2]))
        gap = math.log(math.expm1(_INITIAL_GAP - _MIN_GAP))  # softplus^-1
        self.gaps = nn.Parameter(torch.full((n_classes - 2,), gap))

    def cut_points(self) -> torch.Tensor:
        """The K - 1 increasing cut points."""
        steps = F.softplus(self.gaps) + _MIN_GAP
        return torch.cat([self.first_cut, self.first_cut + torch.cumsum(steps, 0)])

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """One score per volume ``(B,)``: higher means a later class."""
        return self.net(x).float().reshape(len(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log class probabilities ``(B, K)``, computed without subtracting probabilities."""
        return log_class_probabilities(self.score(x), self.cut_points())


def log_class_probabilities(score: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
    """``log P(y = k)`` for scores ``(B,)`` and increasing cut points ``(K - 1,)``.

    With a_k = c_k - s: P(y = 0) = sigmoid(a_0), P(y = K-1) = 1 - sigmoid(a_{K-2}), and in
    between sigmoid(a_k) - sigmoid(a_{k-1}) = (e^{a_k} - e^{a_{k-1}}) / ((1 + e^{a_k})(1 + e^{a_{k-1}})),
    whose log is a_k + log(-expm1(a_{k-1} - a_k)) - softplus(a_k) - softplus(a_{k-1}): finite
    for any score, where the plain difference underflows to 0 once |s| is large.
    """
    a = cuts[None, :] - score[:, None]  # (B, K-1)
    first = -F.softplus(-a[:, :1])
    last = -F.softplus(a[:, -1:])
    upper, lower = a[:, 1:], a[:, :-1]
    middle = upper + torch.log(-torch.expm1(lower - upper)) - F.softplus(upper) - F.softplus(lower)
    return torch.cat([first, middle, last], dim=1)
