"""Checks on the configuration that a JSON schema cannot express.

The schema (config/schema.yaml, applied by Snakemake's ``validate`` and by
:func:`brainaug.settings.build_settings`) checks each key on its own; the rules
here relate keys to each other, so a user learns about a wrong combination at
start-up, not an hour into a run. The per-section checks also run whenever the
library builds that section's settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "check_config", "check_preprocess", "check_synthetic", "SYNTHETIC_CLASSES"]

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
        check_synthetic({**config["synthetic"], "classes": data["classes"]})
        n_folds = config["cv"]["n_folds"]
        n_per_class = config["synthetic"]["n_per_class"]
        smallest = min(n_per_class.values()) if isinstance(n_per_class, dict) else n_per_class
        if smallest < n_folds:
            raise ConfigError(
                f"synthetic.n_per_class ({n_per_class}) must be at least "
                f"cv.n_folds ({n_folds}) so that every fold's test set holds every class"
            )
    check_preprocess(config["preprocess"])
    if "exclude_qc_outliers" in config["preprocess"]:
        old = config["preprocess"]["exclude_qc_outliers"]
        raise ConfigError(
            f"preprocess.exclude_qc_outliers ({old}) was replaced by preprocess.qc_outliers: write "
            f"'qc_outliers: {'exclude' if old else 'keep'}' instead (or leave it out: the default 'stop' "
            "stops before training when QC flags a scan, listing the flagged scans)"
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
    if "augment_max_shift" in classifier:
        from brainaug.template import grid_spacing

        old, size = classifier["augment_max_shift"], config["preprocess"]["image_size"]
        spacing = grid_spacing(size)
        raise ConfigError(
            f"classifier.augment_max_shift ({old} voxels) was replaced by classifier.augment_max_shift_mm, "
            f"in millimetres so that it means the same at every image size: {old} voxels at {size}^3 "
            f"(voxels {min(spacing):.1f}-{max(spacing):.1f} mm) is about "
            f"'augment_max_shift_mm: {old * sum(spacing) / 3:.1f}'; the default 10.5 is the study's 1-4 voxels at 64^3"
        )
    if classifier["min_epochs"] > classifier["max_epochs"]:
        raise ConfigError(
            f"classifier.min_epochs ({classifier['min_epochs']}) exceeds classifier.max_epochs ({classifier['max_epochs']})"
        )
    gan = config["gan"]
    if gan["checkpoint_every"] > gan["iterations"]:
        raise ConfigError(
            f"gan.checkpoint_every ({gan['checkpoint_every']}) exceeds gan.iterations ({gan['iterations']})"
        )


def check_preprocess(section: dict[str, Any]) -> None:
    """Raise ConfigError when the registration levels or intensity percentiles do not pair up.

    Args:
        section: the ``preprocess`` section, defaults filled in.
    """
    shrink, sigmas = section["registration_shrink_factors"], section["registration_smoothing_sigmas"]
    if len(sigmas) != len(shrink):
        raise ConfigError(
            "preprocess.registration_smoothing_sigmas must have one entry per shrink factor "
            f"({len(shrink)}), got {list(sigmas)}"
        )
    if section.get("assume_orientation") is not None:
        from brainaug.io.headers import check_orientation_code

        try:
            check_orientation_code(section["assume_orientation"])
        except ValueError as err:
            raise ConfigError(str(err)) from err
    low, high = section["intensity_percentiles"]
    if not low < high:
        raise ConfigError(
            f"preprocess.intensity_percentiles must be [low, high] with low < high, got {list(section['intensity_percentiles'])}"
        )


def check_synthetic(section: dict[str, Any]) -> None:
    """Raise ConfigError when per-class subject counts do not name exactly the classes.

    Args:
        section: the ``synthetic`` section, defaults filled in, plus ``classes``.
    """
    n_per_class, classes = section["n_per_class"], list(section["classes"])
    if isinstance(n_per_class, dict):
        missing = [c for c in classes if c not in n_per_class]
        extra = [c for c in n_per_class if c not in classes]
        if missing or extra:
            raise ConfigError(
                f"synthetic.n_per_class must give a count for each class {classes}; "
                f"missing {missing}, unknown {extra}"
            )
