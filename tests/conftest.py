"""Fixtures shared across test folders.

``tiny_run`` runs the whole workflow once per session on tests/workflow/tiny.yaml
(16^3, 3 folds, a few iterations): the end-to-end tests read its outputs, and
the SLURM test compares its own run against it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from brainaug_testing import load_test_module

TESTS = Path(__file__).resolve().parent
TINY_CONFIG = TESTS / "workflow" / "tiny.yaml"


@pytest.fixture(scope="session")
def workflow_helpers():
    return load_test_module("workflow/helpers.py")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, workflow_helpers):
    """The complete tiny workflow, run once: a WorkflowRun whose ``results`` is filled."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    run = workflow_helpers.run_workflow(workdir, TINY_CONFIG, timeout=1200)
    if run.returncode != 0:
        pytest.fail(f"The tiny workflow failed:\n{run.describe()}")
    return run
