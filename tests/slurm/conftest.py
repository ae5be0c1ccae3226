"""Fixtures for tests that need the local SLURM test cluster.

``slurm_cluster`` (session scope) starts the cluster with tests/slurm/start.sh
and stops it at the end, unless it was already running (then it stays up). It
skips only when the Debian packages (or root) are missing; ``.ci/run`` installs
them, so CI never skips.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["slurm_cluster", "slurm_helpers"]


def _load_helpers():
    """Import tests/slurm/cluster.py under a unique name (tests/ is no package)."""
    name = "brainaug_tests_slurm_cluster"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("cluster.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def slurm_helpers():
    """The tests/slurm/cluster.py module (paths, parse helpers)."""
    return _load_helpers()


@pytest.fixture(scope="session")
def slurm_cluster(slurm_helpers) -> Iterator[object]:
    """A running single-node SLURM cluster (a ``SlurmCluster``)."""
    reason = slurm_helpers.missing_slurm_reason()
    if reason:
        pytest.skip(reason)
    with slurm_helpers.slurm_cluster() as cluster:
        yield cluster
