"""``name:key=value,key=value`` variants on the command line of the benchmark scripts."""

from __future__ import annotations

import yaml


def parse_variant(text: str) -> tuple[str, dict]:
    """``"b4:batch_size=4,lr=3e-4"`` -> ``("b4", {"batch_size": 4, "lr": 0.0003})`` (values read as YAML)."""
    name, _, rest = text.partition(":")
    values = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        values[key] = yaml.safe_load(value)
    return name, values
