"""Augmentation strategies: how much synthetic data and whether classic augmentation.

A strategy is a config entry, so users can add their own next to the study's
five (``standard``, ``standard_aug``, ``gan33``, ``gan50``, ``gan50_aug``).

Interpretation of "synthetic share": the share is the fraction of the *final*
training set that is synthetic. With ``n_real`` real training volumes and share
``p`` we add ``n_syn = round(p * n_real / (1 - p))`` synthetic volumes, so that
``n_syn / (n_real + n_syn) ~= p``. For 33 % this gives ``n_syn ~= 0.49 * n_real``;
for 50 % it gives ``n_syn = n_real`` (the training set doubles). A share of 1 would
mean no real data at all and is rejected.

Which classes (:func:`synthetic_class_counts`; the GAN step sizes its pool with it,
the classifier draws from that pool with it):

- ``"proportional"``: per-class counts follow the real training set's class counts,
  ``n_syn * n_real_c / n_real`` rounded by the largest-remainder method (so they sum
  to ``n_syn``; ties go to the lower label);
- ``"balanced"``: ``n_syn`` split equally over the classes present in the real
  training set; the remainder goes to the classes with the fewest real volumes.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BALANCE_MODES",
    "DEFAULT_STRATEGIES",
    "Strategy",
    "default_strategies",
    "largest_remainder",
    "n_synthetic_for",
    "parse_strategies",
    "synthetic_class_counts",
]

BALANCE_MODES = ("proportional", "balanced")
_KEYS = {"synthetic_share", "classic_augmentation", "synthetic_balance", "name"}


@dataclass(frozen=True)
class Strategy:
    """One row of the study's augmentation table.

    Args:
        name: identifier, used as the ``{strategy}`` wildcard (filename-safe).
        synthetic_share: fraction of the final training set that is synthetic, in [0, 1).
        classic_augmentation: apply the study's random roll + axial rotation on the fly.
        synthetic_balance: ``"proportional"`` (synthetic classes follow the real training
            set's class counts) or ``"balanced"`` (equal numbers per class).
    """

    name: str
    synthetic_share: float = 0.0
    classic_augmentation: bool = False
    synthetic_balance: str = "proportional"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Strategy name must be a non-empty string, got {self.name!r}")
        if not all(c.isalnum() or c in "_-" for c in self.name):
            raise ValueError(
                f"Strategy name {self.name!r} must contain only letters, digits, '_' or '-' "
                "(it becomes a directory name)"
            )
        share = self.synthetic_share
        if isinstance(share, bool) or not isinstance(share, (int, float)):
            raise TypeError(
                f"Strategy {self.name!r}: 'synthetic_share' must be a number in [0, 1), "
                f"got {type(share).__name__} {share!r}"
            )
        if not 0.0 <= float(share) < 1.0:
            raise ValueError(
                f"Strategy {self.name!r}: 'synthetic_share' must be in [0, 1), got {share!r}"
            )
        object.__setattr__(self, "synthetic_share", float(share))
        if not isinstance(self.classic_augmentation, bool):
            raise TypeError(
                f"Strategy {self.name!r}: 'classic_augmentation' must be true or false, "
                f"got {self.classic_augmentation!r}"
            )
        if self.synthetic_balance not in BALANCE_MODES:
            raise ValueError(
                f"Strategy {self.name!r}: 'synthetic_balance' must be one of {BALANCE_MODES}, "
                f"got {self.synthetic_balance!r}"
            )

    @property
    def uses_synthetic(self) -> bool:
        """True when this strategy needs the fold's GAN output."""
        return self.synthetic_share > 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for metrics.json / checkpoints)."""
        return {
            "name": self.name,
            "synthetic_share": self.synthetic_share,
            "classic_augmentation": self.classic_augmentation,
            "synthetic_balance": self.synthetic_balance,
        }


DEFAULT_STRATEGIES: dict[str, dict[str, Any]] = {
    "standard": {"synthetic_share": 0.0, "classic_augmentation": False},
    "standard_aug": {"synthetic_share": 0.0, "classic_augmentation": True},
    "gan33": {"synthetic_share": 0.33, "classic_augmentation": False},
    "gan50": {"synthetic_share": 0.5, "classic_augmentation": False},
    "gan50_aug": {"synthetic_share": 0.5, "classic_augmentation": True},
}


def default_strategies() -> dict[str, Strategy]:
    """The study's five strategies, keyed by name, in table order."""
    return parse_strategies(DEFAULT_STRATEGIES)


def parse_strategies(cfg_section: Mapping[str, Any] | list | None) -> dict[str, Strategy]:
    """Build strategies from the config's ``strategies`` section.

    Accepted forms (insertion order is kept):

    - mapping name -> ``{synthetic_share, classic_augmentation, synthetic_balance}``
    - list of mappings each carrying a ``name`` key
    - ``None`` or empty -> the study's default five.

    Args:
        cfg_section: the ``strategies`` section of the validated config.

    Returns:
        ``{name: Strategy}``.

    Raises:
        TypeError / ValueError naming the strategy and key on malformed entries.
    """
    if cfg_section is None or len(cfg_section) == 0:
        cfg_section = DEFAULT_STRATEGIES
    if isinstance(cfg_section, Mapping):
        items = list(cfg_section.items())
    elif isinstance(cfg_section, list):
        items = []
        for i, entry in enumerate(cfg_section):
            if not isinstance(entry, Mapping) or "name" not in entry:
                raise TypeError(
                    f"strategies[{i}] must be a mapping with a 'name' key, got {entry!r}"
                )
            items.append((entry["name"], entry))
    else:
        raise TypeError(
            "Config section 'strategies' must be a mapping of name -> settings or a list, "
            f"got {type(cfg_section).__name__}"
        )
    out: dict[str, Strategy] = {}
    for name, entry in items:
        if not isinstance(name, str):
            raise TypeError(f"Strategy names must be strings, got {name!r}")
        if name in out:
            raise ValueError(f"Strategy {name!r} is defined twice")
        if entry is None:
            entry = {}
        if not isinstance(entry, Mapping):
            raise TypeError(
                f"Strategy {name!r} must be a mapping of settings, got {type(entry).__name__}"
            )
        unknown = set(entry) - _KEYS
        if unknown:
            raise ValueError(
                f"Strategy {name!r}: unknown key(s) {sorted(unknown)}; "
                f"expected some of {sorted(_KEYS - {'name'})}"
            )
        if "name" in entry and entry["name"] != name:
            raise ValueError(
                f"Strategy {name!r}: 'name' field {entry['name']!r} disagrees with its key"
            )
        out[name] = Strategy(
            name=name,
            synthetic_share=entry.get("synthetic_share", 0.0),
            classic_augmentation=entry.get("classic_augmentation", False),
            synthetic_balance=entry.get("synthetic_balance", "proportional"),
        )
    return out


def n_synthetic_for(n_real: int, share: float) -> int:
    """Number of synthetic volumes so that they make up ``share`` of the training set.

    ``round(share * n_real / (1 - share))`` (Python's round, half to even).

    Args:
        n_real: number of real training volumes (>= 0).
        share: synthetic share of the final training set, in [0, 1).
    """
    if isinstance(n_real, bool) or not isinstance(n_real, numbers.Integral) or n_real < 0:
        raise ValueError(f"n_real must be a non-negative integer, got {n_real!r}")
    if not 0.0 <= share < 1.0:
        raise ValueError(f"share must be in [0, 1), got {share!r}")
    return int(round(share * int(n_real) / (1.0 - share)))


def largest_remainder(total: int, weights: Sequence[float]) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (Hamilton's method).

    Args:
        total: non-negative integer to split.
        weights: non-negative weights, not all zero.

    Returns:
        int64 array, same length as ``weights``, summing to ``total``; ties in the
        fractional parts go to the lower index.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or len(w) == 0 or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative and not all zero, got {list(w)}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    quotas = total * w / w.sum()
    counts = np.floor(quotas).astype(np.int64)
    rest = int(total - counts.sum())
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


def synthetic_class_counts(real_labels: np.ndarray, strategy: Strategy, n_classes: int) -> np.ndarray:
    """Number of synthetic volumes per class (length ``n_classes``) for this strategy.

    Args:
        real_labels: int labels ``(N_real,)`` of the real training set.
        strategy: gives the synthetic share and balance mode.
        n_classes: number of classes.
    """
    real_labels = np.asarray(real_labels, dtype=np.int64)
    if real_labels.size and (real_labels.min() < 0 or real_labels.max() >= n_classes):
        raise ValueError(
            f"real_labels must lie in [0, {n_classes - 1}], got range "
            f"[{real_labels.min()}, {real_labels.max()}]"
        )
    n_syn = n_synthetic_for(int(real_labels.size), strategy.synthetic_share)
    real_counts = np.bincount(real_labels, minlength=n_classes)
    if n_syn == 0:
        return np.zeros(n_classes, dtype=np.int64)
    if strategy.synthetic_balance == "proportional":
        return largest_remainder(n_syn, real_counts)
    present = np.flatnonzero(real_counts > 0)
    counts = np.zeros(n_classes, dtype=np.int64)
    counts[present] = n_syn // len(present)
    rest = n_syn - int(counts.sum())
    # The remainder goes to the rarest real classes first (ties: lower label).
    rarest = present[np.argsort(real_counts[present], kind="stable")]
    counts[rarest[:rest]] += 1
    return counts
