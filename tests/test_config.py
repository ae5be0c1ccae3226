"""The shipped configs validate against the schema; bad values are named."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from brainaug.config import ConfigError, check_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text(encoding="utf-8"))


def _with_defaults(instance: dict) -> dict:
    """Validate like Snakemake's validate(set_default=True): fill defaults, then check."""
    from snakemake.utils import validate

    config = copy.deepcopy(instance)
    validate(config, str(ROOT / "config" / "schema.yaml"), set_default=True)
    return config


def _merged(*names: str) -> dict:
    from snakemake.utils import update_config

    config: dict = {}
    for name in names:
        update_config(config, yaml.safe_load((ROOT / "config" / name).read_text(encoding="utf-8")))
    return config


def test_default_config_is_valid_and_complete():
    config = _with_defaults(_merged("config.yaml"))
    check_config(config)
    assert config["preprocess"]["image_size"] == 32
    assert list(config["strategies"]) == ["standard", "standard_aug", "gan33", "gan50", "gan50_aug"]
    assert config["cv"]["n_folds"] == 6


def test_study_config_is_valid_with_reference_sizes():
    config = _with_defaults(_merged("config.yaml", "study.yaml"))
    assert config["preprocess"]["image_size"] == 64
    assert (config["gan"]["width"], config["gan"]["latent_dim"], config["gan"]["batch_size"]) == (64, 1000, 4)
    assert config["resources"]["gan"]["gpu"] == 1
    # The study's classifier, not the laptop's (which config.yaml sets and study.yaml is merged over).
    study_model = {"model": "conv5_fc3", "pooled_blocks": 5, "pooling": "flatten", "dropout": 0.5, "lr": 1e-4,
                   "selection": "balanced_accuracy", "selection_from_train_accuracy": 0.0, "head": "softmax"}
    assert {key: config["classifier"][key] for key in study_model} == study_model


@pytest.mark.parametrize(
    ("section", "key", "value", "match"),
    [
        ("preprocess", "image_size", 48, "48 is not one of"),
        ("cv", "n_folds", 1, "1 is less than the minimum"),
        ("gan", "precision", "fp8", "'fp8' is not one of"),
        ("classifier", "lr", -1.0, "less than or equal to the minimum"),
        ("gan", "widht", 8, "Additional properties are not allowed"),
    ],
)
def test_schema_rejects_bad_values(section, key, value, match):
    config = _merged("config.yaml")
    config[section][key] = value
    with pytest.raises(Exception, match=match):
        _with_defaults(config)


def test_strategy_entries_are_checked():
    config = _merged("config.yaml")
    config["strategies"] = {"standard": {"synthetic_share": 1.0, "classic_augmentation": False}}
    with pytest.raises(Exception, match="1.0 is greater than or equal to the maximum"):
        _with_defaults(config)


def test_user_strategies_replace_the_defaults():
    config = _merged("config.yaml")
    config["strategies"] = {"standard": {"synthetic_share": 0.0, "classic_augmentation": False},
                            "gan25": {"synthetic_share": 0.25, "classic_augmentation": True}}
    config = _with_defaults(config)
    assert list(config["strategies"]) == ["standard", "gan25"]
    assert config["strategies"]["gan25"]["synthetic_balance"] == "proportional"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"data": {"source": "manifest"}}, r"data\.manifest must be set"),
        ({"data": {"source": "bids", "bids_dir": "/nonexistent/bids"}}, r"data\.bids_dir: no such folder"),
        ({"data": {"classes": ["CN", "FTD"]}}, r"synthetic cohort simulates"),
        ({"synthetic": {"n_per_class": 4}}, r"synthetic\.n_per_class \(4\) must be at least cv\.n_folds \(6\)"),
        ({"results": {"baseline": "nope"}}, r"results\.baseline 'nope'"),
        ({"gan": {"checkpoint_every": 10_000}}, r"gan\.checkpoint_every"),
        ({"classifier": {"max_epochs": 5}}, r"classifier\.min_epochs \(20\) exceeds classifier\.max_epochs \(5\)"),
    ],
)
def test_cross_key_checks_name_the_key(change, match):
    from snakemake.utils import update_config

    config = _merged("config.yaml")
    update_config(config, change)
    config = _with_defaults(config)
    with pytest.raises(ConfigError, match=match):
        check_config(config)


def test_schema_is_itself_valid():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(("old", "new"), [(True, "exclude"), (False, "keep")])
def test_old_exclude_qc_outliers_is_refused_with_its_replacement(old, new):
    config = _merged("config.yaml")
    config["preprocess"].pop("qc_outliers")
    config["preprocess"]["exclude_qc_outliers"] = old
    config = _with_defaults(config)
    with pytest.raises(ConfigError, match=rf"preprocess\.exclude_qc_outliers \({old}\) was replaced by preprocess\.qc_outliers: write 'qc_outliers: {new}'"):
        check_config(config)


def test_old_augment_max_shift_in_voxels_is_refused_with_its_replacement():
    config = _merged("config.yaml")
    config["classifier"]["augment_max_shift"] = 4
    config = _with_defaults(config)
    config["preprocess"]["image_size"] = 64
    with pytest.raises(ConfigError, match=r"classifier\.augment_max_shift \(4 voxels\) was replaced by "
                       r"classifier\.augment_max_shift_mm.*4 voxels at 64\^3 \(voxels 2\.4-2\.9 mm\) is about "
                       r"'augment_max_shift_mm: 10\.5'"):
        check_config(config)


def test_default_qc_decision_is_stop_and_orientation_is_not_assumed():
    config = _with_defaults(_merged("config.yaml"))
    assert config["preprocess"]["qc_outliers"] == "stop"
    assert config["preprocess"]["assume_orientation"] is None
    assert config["preprocess"]["duplicate_correlation"] == 0.995
    assert _with_defaults(_merged("config.yaml", "study.yaml"))["preprocess"]["qc_outliers"] == "exclude"


def test_assumed_orientation_must_name_three_axes():
    config = _with_defaults(_merged("config.yaml"))
    config["preprocess"]["assume_orientation"] = "RRS"
    with pytest.raises(ConfigError, match=r"assume_orientation must be three letters, one of R/L, A/P and S/I each"):
        check_config(config)


def test_the_package_reads_the_schema_snakemake_validates_with():
    """``brainaug/data/schema.yaml`` links to ``config/schema.yaml``; an editor or ``sed -i``
    that replaced the link with a copy would let the two schemas drift apart silently."""
    from brainaug.settings import SCHEMA_PATH

    assert SCHEMA_PATH.read_bytes() == (ROOT / "config" / "schema.yaml").read_bytes()
    if SCHEMA_PATH.parent.parent.parent == ROOT / "src":  # a checkout, not an installed wheel's copy
        assert SCHEMA_PATH.resolve() == (ROOT / "config" / "schema.yaml").resolve(), f"{SCHEMA_PATH} is not a link"
