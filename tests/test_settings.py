"""The schema is the one source of defaults: settings built from an empty section carry its defaults."""

from __future__ import annotations

import dataclasses

import pytest

from brainaug.classify.settings import ClassifierSettings
from brainaug.cohort.synthetic import SyntheticCohortConfig
from brainaug.controls import ControlSettings
from brainaug.gan.quality import QualitySettings
from brainaug.gan.settings import GANSettings
from brainaug.preprocess.settings import PreprocessSettings
from brainaug.settings import schema_default, section_schema

# (settings class, its config section, fields that come from another section)
CASES = [
    (GANSettings, "gan", {"image_size": "preprocess.image_size"}),
    (ClassifierSettings, "classifier", {}),
    (PreprocessSettings, "preprocess", {}),
    (QualitySettings, "gan.quality", {}),
    (SyntheticCohortConfig, "synthetic", {"classes": "data.classes"}),
    (ControlSettings, "controls", {}),
]


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize(("cls", "section", "borrowed"), CASES, ids=[c[1] for c in CASES])
def test_empty_section_gives_the_schema_defaults(cls, section, borrowed):
    settings = cls.from_config({})
    keys = section_schema(section)["properties"]
    for field in dataclasses.fields(cls):
        value = getattr(settings, field.name)
        if field.name in borrowed:
            assert _plain(value) == schema_default(borrowed[field.name]), field.name
        elif field.name in keys:
            assert _plain(value) == schema_default(f"{section}.{field.name}"), field.name


@pytest.mark.parametrize(("cls", "section", "borrowed"), CASES, ids=[c[1] for c in CASES])
def test_every_configurable_field_is_in_the_schema(cls, section, borrowed):
    """A field the schema does not know would need a default in code: the drift this design removes."""
    keys = set(section_schema(section)["properties"]) | set(borrowed)
    fixed = {"scale"} if cls is SyntheticCohortConfig else set()
    missing = {f.name for f in dataclasses.fields(cls)} - keys - fixed
    assert not missing, f"{cls.__name__} fields missing from the schema's {section!r}: {sorted(missing)}"


def test_a_section_value_overrides_its_default():
    assert GANSettings.from_config({"width": 8}).width == 8
    with pytest.raises(ValueError, match=r"gan.width: 0 is less than the minimum of \d"):
        GANSettings.from_config({"width": 0})
