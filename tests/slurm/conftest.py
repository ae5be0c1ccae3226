"""Fixtures for tests that need the local SLURM test cluster.

``slurm_cluster`` (session scope) starts the cluster with tests/slurm/start.sh
and stops it at the end, unless it was already running (then it stays up). It
skips only when the Debian packages (or root) are missing; ``.ci/run`` installs
them, so CI never skips.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from brainaug_testing import load_test_module

__all__ = ["slurm_cluster", "slurm_helpers"]


@pytest.fixture(scope="session")
def slurm_helpers():
    """The tests/slurm/cluster.py module (paths, parse helpers)."""
    return load_test_module("slurm/cluster.py")


@pytest.fixture(scope="session")
def slurm_cluster(slurm_helpers) -> Iterator[object]:
    """A running single-node SLURM cluster (a ``SlurmCluster``)."""
    reason = slurm_helpers.missing_slurm_reason()
    if reason:
        pytest.skip(reason)
    with slurm_helpers.slurm_cluster() as cluster:
        yield cluster
