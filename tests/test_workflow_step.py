"""A failing workflow step names its problem on the console in whole lines."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from brainaug.workflow_step import workflow_step


class _Console(io.StringIO):
    """A console that records each write, as an unbuffered stderr issues each as a syscall."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_a_failing_step_writes_whole_lines_to_the_console_and_the_traceback_to_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel jobs share one console: with PYTHONUNBUFFERED every write is a syscall,
    so a line split over two writes can be spliced with another job's line."""
    console = _Console()
    monkeypatch.setattr(sys, "stderr", console)
    log = tmp_path / "logs" / "step.log"
    snakemake = SimpleNamespace(log=[str(log)], rule="preprocess", wildcards={"scan": "sub-01_ses-01"})

    with pytest.raises(SystemExit) as stop, workflow_step(snakemake):
        raise ValueError("scan.nii.gz is constant")

    assert stop.value.code == 1
    assert sys.stderr is console
    assert all(w.endswith("\n") for w in console.writes if w), console.writes
    lines = console.getvalue().splitlines()
    assert lines[0] == "brainaug: error in preprocess (scan=sub-01_ses-01): ValueError: scan.nii.gz is constant"
    assert lines[1] == f"brainaug: full traceback in {log}"
    assert "Traceback" in log.read_text() and "scan.nii.gz is constant" in log.read_text()
