"""snakemake --lint finds nothing but the deliberate absence of conda envs.

The workflow installs as one Python package (pip install -e .), so per-rule
conda environments would only duplicate pyproject.toml.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_lint_is_clean_apart_from_conda(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--lint"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    output = proc.stdout + proc.stderr
    lints = set(re.findall(r"^\s+\* (.+?):?$", output, flags=re.M))
    assert lints, output[-2000:]  # the linter ran and reported the conda notice
    assert lints == {"Specify a conda environment or container for each rule."}, output[-4000:]
