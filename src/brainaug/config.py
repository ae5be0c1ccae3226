"""Checks on the configuration that a JSON schema cannot express.

The schema (config/schema.yaml, applied by Snakemake's ``validate``) checks
each key on its own; the rules here relate keys to each other, so a user
learns about a wrong combination at start-up, not an hour into a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "check_config", "SYNTHETIC_CLASSES"]

#: Diagnoses the embedded synthetic cohort knows how to simulate.
SYNTHETIC_CLASSES = ("CN", "MCI", "AD")


class ConfigError(ValueError):
    """A configuration value, or a combination of values, that cannot work."""


def check_config(config: dict[str, Any]) -> None:
    """Raise ConfigError naming the key(s) at fault.

    Args:
        config: the validated config (defaults already filled in by the schema).
    """
    data = config["data"]
    source = data["source"]
    if source == "manifest":
        if not data.get("manifest"):
            raise ConfigError("data.manifest must be set when data.source is 'manifest'")
        if not Path(data["manifest"]).is_file():
            raise ConfigError(f"data.manifest: no such file: {data['manifest']}")
    if source == "bids":
        if not data.get("bids_dir"):
            raise ConfigError("data.bids_dir must be set when data.source is 'bids'")
        if not Path(data["bids_dir"]).is_dir():
            raise ConfigError(f"data.bids_dir: no such folder: {data['bids_dir']}")
    if source == "synthetic":
        unknown = [c for c in data["classes"] if c not in SYNTHETIC_CLASSES]
        if unknown:
            raise ConfigError(
                f"data.classes: the synthetic cohort simulates {list(SYNTHETIC_CLASSES)}, got unknown {unknown}"
            )
        n_folds = config["cv"]["n_folds"]
        if config["synthetic"]["n_per_class"] < n_folds:
            raise ConfigError(
                f"synthetic.n_per_class ({config['synthetic']['n_per_class']}) must be at least "
                f"cv.n_folds ({n_folds}) so that every fold's test set holds every class"
            )
    overlap = set(data["classes"]) & set(data.get("exclude_diagnoses", []))
    if overlap:
        raise ConfigError(f"data.exclude_diagnoses lists kept classes: {sorted(overlap)}")
    baseline = config["results"]["baseline"]
    if baseline not in config["strategies"]:
        raise ConfigError(
            f"results.baseline '{baseline}' is not one of the strategies {list(config['strategies'])}"
        )
    classifier = config["classifier"]
    if classifier["min_epochs"] > classifier["max_epochs"]:
        raise ConfigError(
            f"classifier.min_epochs ({classifier['min_epochs']}) exceeds classifier.max_epochs ({classifier['max_epochs']})"
        )
    gan = config["gan"]
    if gan["checkpoint_every"] > gan["iterations"]:
        raise ConfigError(
            f"gan.checkpoint_every ({gan['checkpoint_every']}) exceeds gan.iterations ({gan['iterations']})"
        )
