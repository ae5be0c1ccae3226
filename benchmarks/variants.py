"""What the classifier benchmarks share: ``name:key=value`` variants on the command line, and one fold's arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml


def fold_role(volumes: np.ndarray, index: pd.DataFrame, entry: dict, role: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Volumes (float32), labels and subject IDs of one role (train, val, test) of a ``splits.json`` fold entry."""
    rows = index["subject_id"].isin(entry[role]).to_numpy()
    return np.asarray(volumes[rows], np.float32), index["label"].to_numpy()[rows], index["subject_id"].to_numpy()[rows]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets, so that ``betas=[0.5,0.9]`` stays one item."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item for item in items if item]


def parse_variant(text: str) -> tuple[str, dict]:
    """``"b4:batch_size=4,betas=[0.5,0.9]"`` -> ``("b4", {"batch_size": 4, "betas": [0.5, 0.9]})`` (values read as YAML)."""
    name, _, rest = text.partition(":")
    values = {}
    for item in _split_top_level(rest):
        key, _, value = item.partition("=")
        values[key] = parse_value(value)
    return name, values


def parse_value(text: str):
    """A command-line value read as YAML, except that ``3e-4`` is a number (YAML 1.1 reads it as a string)."""
    parsed = yaml.safe_load(text)
    if isinstance(parsed, str):
        try:
            return float(parsed)
        except ValueError:
            pass
    return parsed
