"""Import the test suite's helper modules by path, each under one unique name.

pytest runs with ``--import-mode=importlib`` and ``tests`` is not a package,
so ``from tests.workflow.helpers import ...`` fails and a bare
``import helpers`` could find another module of that name. pyproject's
``pythonpath = ["tests"]`` makes this uniquely named module importable from
conftests and test files alike; it loads the others.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["load_test_module"]

TESTS = Path(__file__).resolve().parent


def load_test_module(relative_path: str) -> ModuleType:
    """The module at ``tests/<relative_path>`` (e.g. ``"workflow/helpers.py"``), loaded once per session.

    Its name in ``sys.modules`` is ``brainaug_tests_`` plus the path with
    separators as underscores (``brainaug_tests_workflow_helpers``), so every
    caller gets the same module object.
    """
    path = TESTS / relative_path
    name = "brainaug_tests_" + "_".join(Path(relative_path).with_suffix("").parts)
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load test module {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
