"""Typed settings built from one config section, with the schema as the only source of defaults.

Why: the workflow validates the whole config against ``config/schema.yaml`` with
defaults filled in, and the library's settings dataclasses used to repeat those
defaults, bounds and unknown-key checks by hand; the two copies drifted. Here one
helper validates a section against its part of the same schema, fills its defaults,
converts JSON lists to the tuples the dataclasses hold, and returns the frozen
dataclass, so a setting built in a test or a notebook is the one the workflow gets.

There is one schema file, ``config/schema.yaml``, read by Snakemake and by this
module. The package reaches it through ``brainaug/data/schema.yaml``, a symbolic
link in the repository that a wheel build turns into a copy, so the settings
work from a checkout (editable install) and from an installed wheel alike.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml

__all__ = ["SCHEMA_PATH", "build_settings", "schema_default", "section_schema"]

#: The configuration schema shared by Snakemake's ``validate`` and :func:`build_settings`.
SCHEMA_PATH = Path(__file__).with_name("data") / "schema.yaml"

T = TypeVar("T")

_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    if not SCHEMA_PATH.is_file():
        raise FileNotFoundError(f"The configuration schema is missing: expected {SCHEMA_PATH}")
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def section_schema(path: str) -> dict[str, Any]:
    """The schema of a dotted config path, e.g. ``"gan"`` or ``"preprocess.image_size"``."""
    node = _schema()
    for part in path.split("."):
        node = node["properties"][part]
    return node


def schema_default(path: str) -> Any:
    """The schema's default of a dotted config path (a fresh copy)."""
    return copy.deepcopy(section_schema(path)["default"])


def _fill_defaults(validator_class: type) -> type:
    """A validator that, like Snakemake's ``validate(set_default=True)``, fills missing keys first."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: dict, instance: Any, schema: dict) -> Any:
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _fill_defaults(jsonschema.Draft202012Validator)


def _describe(where: str, error: jsonschema.ValidationError) -> Exception:
    """One error naming the key: what was expected and what was given."""
    if error.path:
        where = ".".join([where, *(str(p) for p in error.path)])
    value = error.instance
    if error.validator == "type":
        kinds = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
        return TypeError(f"{where}: expected {expected}, got {type(value).__name__} {value!r}")
    if error.validator == "enum":
        return ValueError(f"{where}: expected one of {error.validator_value}, got {value!r}")
    return ValueError(f"{where}: {error.message}")


def _as_json(value: Any) -> Any:
    """A copy with tuples as lists, so settings built in Python validate like YAML ones."""
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _as_json(v) for k, v in value.items()}
    return value


def _convert(value: Any, hint: Any) -> Any:
    """JSON values as the dataclass field wants them: tuples for lists, floats for numbers."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if isinstance(value, (list, tuple)):
            hint = next((a for a in options if typing.get_origin(a) is tuple), options[0])
        elif isinstance(value, Mapping):
            return dict(value)
        else:
            hint = options[0]
        return _convert(value, hint)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        items = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        return tuple(_convert(v, h) for v, h in zip(value, items))
    if isinstance(value, bool):
        return value
    if hint is float and isinstance(value, int):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build_settings(
    cls: type[T],
    name: str,
    section: Mapping[str, Any] | None,
    *,
    borrowed: Mapping[str, str] | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
    **fixed: Any,
) -> T:
    """Validate the config section ``name``, fill its defaults and return ``cls`` built from it.

    Args:
        cls: a frozen dataclass whose fields are keys of the section (schema keys that
            are not fields, such as ``preprocess.qc_outliers``, are validated
            and then left out).
        name: the section's key in the config (``"gan"``); errors start with it.
        section: the user's section; ``None`` means empty (all defaults).
        borrowed: fields that live in another section, ``{field: "section.key"}``
            (the GAN's ``image_size`` is ``preprocess.image_size``); the section may
            set them, else they take that key's default, and that key's schema checks them.
        check: cross-key checks of the filled section (from :mod:`brainaug.config`).
        fixed: fields that are not configuration (set by the caller, never by a config).

    Raises:
        TypeError: ``section`` is not a mapping, or a value has the wrong type.
        ValueError: an unknown key or a value out of bounds (the message names the key).
    """
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise TypeError(f"{name} config section: expected a mapping, got {type(section).__name__}")
    borrowed = dict(borrowed or {})
    schema = section_schema(name)
    known = set(schema["properties"]) | set(borrowed)
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"{name} config section: unknown keys {unknown}; known keys are {sorted(known)}")
    values = {key: _as_json(value) for key, value in section.items()}
    own = {k: v for k, v in values.items() if k not in borrowed}
    errors = list(_Validator(schema).iter_errors(own))
    if errors:
        raise _describe(name, jsonschema.exceptions.best_match(errors))
    for field, path in borrowed.items():
        value = values.get(field, schema_default(path))
        error = jsonschema.exceptions.best_match(_Validator(section_schema(path)).iter_errors(value))
        if error is not None:
            raise _describe(f"{name}.{field}", error)
        own[field] = value
    if check is not None:
        check(own)
    hints = typing.get_type_hints(cls)
    kwargs = {f.name: _convert(own[f.name], hints[f.name]) for f in dataclasses.fields(cls) if f.name in own}
    return cls(**kwargs, **fixed)
