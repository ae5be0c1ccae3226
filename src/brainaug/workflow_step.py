"""Run a workflow step with its log wired the way Snakemake users expect.

Snakemake keeps a rule's log file but shows a failing job only as "check the
log". A user whose manifest has a bad row should read *which* row on the
console, so a failing step writes its full traceback to the log and one
line naming the problem to stderr.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from brainaug.memory import retain_freed_memory

__all__ = ["workflow_step"]


@contextlib.contextmanager
def workflow_step(snakemake: Any) -> Iterator[logging.Logger]:
    """Context manager for a Snakemake ``script:``: logging to ``snakemake.log[0]``.

    Args:
        snakemake: the object Snakemake injects into a script.

    Yields:
        A logger writing to the rule's log file (and progress bars may write
        to ``logger.stream``).
    """
    log_path = Path(snakemake.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stream: TextIO = open(log_path, "a", buffering=1, encoding="utf-8")
    logger = logging.getLogger(f"brainaug.{snakemake.rule}")
    logger.handlers.clear()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.stream = stream  # type: ignore[attr-defined]
    real_stderr = sys.stderr
    sys.stderr = stream
    retain_freed_memory()  # jobs are short-lived processes: reuse big blocks rather than page-fault them anew
    try:
        yield logger
    except Exception as err:  # noqa: BLE001 - reported, then re-signalled by the exit code
        stream.write(traceback.format_exc())
        wildcards = ", ".join(f"{k}={v}" for k, v in dict(snakemake.wildcards).items())
        where = f"{snakemake.rule}" + (f" ({wildcards})" if wildcards else "")
        # One write, not print()'s two: under PYTHONUNBUFFERED each write is its own
        # syscall, and parallel jobs sharing the console would splice their lines.
        real_stderr.write(
            f"brainaug: error in {where}: {type(err).__name__}: {err}\n"
            f"brainaug: full traceback in {log_path}\n"
        )
        real_stderr.flush()
        stream.close()
        sys.stderr = real_stderr
        raise SystemExit(1) from None
    sys.stderr = real_stderr
    stream.close()
