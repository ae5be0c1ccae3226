"""Drive the single-node SLURM test cluster from Python tests.

Why: the SLURM profile has to be checked against a real ``slurmctld``/``slurmd``
(see ``tests/slurm/README.md``). This module wraps ``start.sh``/``stop.sh`` and
runs Snakemake through a workflow profile so that a test gets the evidence it
needs:
the completed process, the full log text, and the SLURM job IDs per rule, which
``job_info`` can look up in ``slurmctld`` afterwards (the test cluster keeps
finished jobs for a day, ``MinJobAge=86400``).

Usage::

    with slurm_cluster() as cluster:
        run = cluster.run_snakemake(workdir, snakefile=REPO / "Snakefile",
                                    configfile=REPO / "config/test.yaml")
        assert run.returncode == 0, run.log_text
        gpu_job = cluster.job_info(run.job_ids["train_gan"][0])
        assert gpu_job["TresPerJob"] == "gres:gpu:1"
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "REPO_ROOT",
    "SLURM_DIR",
    "SLURM_PROFILE",
    "SLURM_TEST_PROFILE",
    "SlurmCluster",
    "SnakemakeRun",
    "missing_slurm_reason",
    "parse_submitted_jobs",
    "slurm_cluster",
    "start_cluster",
    "stop_cluster",
]

SLURM_DIR = Path(__file__).resolve().parent
REPO_ROOT = SLURM_DIR.parents[1]
SLURM_PROFILE = REPO_ROOT / "workflow" / "profiles" / "slurm"
SLURM_TEST_PROFILE = REPO_ROOT / "workflow" / "profiles" / "slurm-test"
DEFAULT_STATE_DIR = Path("/tmp/brainaug-slurm")
REQUIRED_EXECUTABLES = ("sinfo", "squeue", "sbatch", "scontrol", "slurmctld", "slurmd", "munged")

# "Job 0 has been submitted with SLURM jobid 4 (log: /w/.snakemake/slurm_logs/rule_x/4.log)."
_SUBMITTED = re.compile(
    r"has been submitted with SLURM jobid (?P<id>\d+(?:_\d+)?)"
    r" \(log: [^)]*?/(?:rule|group)_(?P<rule>[^/\s]+)/"
)


def _which(name: str) -> str | None:
    """Find an executable on PATH or in the sbin directories (daemons live there)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def missing_slurm_reason() -> str | None:
    """Return why the test cluster cannot run here, or None if it can.

    Why: tests skip only when the Debian packages are absent (a developer
    laptop), never silently in CI, where ``.ci/run`` installs them.
    """
    missing = [exe for exe in REQUIRED_EXECUTABLES if _which(exe) is None]
    if missing:
        return (
            f"SLURM test cluster unavailable: missing {', '.join(missing)}; install with "
            "'apt-get install -y slurmctld slurmd slurm-client munge'"
        )
    if os.geteuid() != 0:
        return f"SLURM test cluster needs root (slurmd, /etc/slurm); running as uid {os.geteuid()}"
    return None


def parse_submitted_jobs(log_text: str) -> dict[str, list[str]]:
    """Map rule name -> SLURM job IDs, from the executor plugin's submission lines.

    Args:
        log_text: Snakemake's output (stdout and stderr) or its ``.snakemake/log`` file.

    Returns:
        ``{"rule": ["jobid", ...]}`` in submission order.
    """
    jobs: dict[str, list[str]] = {}
    for match in _SUBMITTED.finditer(log_text):
        jobs.setdefault(match["rule"], []).append(match["id"])
    return jobs


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment without SLURM_* variables (Snakemake must run outside any job)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(extra or {})
    return env


@dataclass
class SnakemakeRun:
    """One Snakemake run through a profile.

    Attributes:
        proc: the completed ``timeout -k ... snakemake ...`` process (stdout holds
            stdout and stderr together).
        log_text: the same text, for assertions and failure messages.
        job_ids: rule name -> SLURM job IDs submitted in this run.
    """

    proc: subprocess.CompletedProcess[str]
    log_text: str
    job_ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def returncode(self) -> int:
        """Snakemake's exit status (124/137: it hit the ``timeout`` limit)."""
        return self.proc.returncode


@dataclass
class SlurmCluster:
    """A running test cluster.

    Attributes:
        state_dir: where start.sh keeps PIDs, logs and spool directories.
        node: the node name (``hostname -s``).
        started_here: True when this object's ``start_cluster`` call started the
            daemons (only then does ``slurm_cluster`` stop them).
    """

    state_dir: Path
    node: str
    started_here: bool

    def run_snakemake(
        self,
        workdir: str | os.PathLike[str],
        snakefile: str | os.PathLike[str] = REPO_ROOT / "Snakefile",
        *,
        configfile: str | os.PathLike[str] | None = None,
        targets: Sequence[str] = (),
        profile: str | os.PathLike[str] = SLURM_TEST_PROFILE,
        extra_args: Sequence[str] = (),
        timeout_s: int = 600,
        env: dict[str, str] | None = None,
    ) -> SnakemakeRun:
        """Run Snakemake through a workflow profile, bounded by ``timeout -k``.

        Why ``timeout -k``: a plain SIGTERM makes Snakemake wait for its running
        jobs, which can hang; ``-k 10`` follows up with SIGKILL.

        Args:
            workdir: Snakemake's ``--directory``; created if missing.
            snakefile: the workflow's Snakefile.
            configfile: passed as ``--configfile`` when given.
            targets: target files or rules (default: the workflow's first rule).
            profile: the ``--workflow-profile`` directory (default slurm-test).
            extra_args: further Snakemake arguments, e.g. ``("--keep-going",)``.
            timeout_s: wall-clock limit of the whole run in seconds.
            env: extra environment variables.

        Returns:
            The run: process, log text and submitted SLURM job IDs per rule.
        """
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s}")
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            "timeout", "-k", "10", str(int(timeout_s)),
            "snakemake",
            # targets first: options such as --configfile take several values
            # and would swallow targets that follow them
            *targets,
            "--snakefile", str(snakefile),
            "--directory", str(workdir),
            "--workflow-profile", str(profile),
        ]
        if configfile is not None:
            cmd += ["--configfile", str(configfile)]
        cmd += list(extra_args)
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=_clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        text = proc.stdout or ""
        return SnakemakeRun(proc=proc, log_text=text, job_ids=parse_submitted_jobs(text))

    def job_info(self, job_id: str | int) -> dict[str, str]:
        """Fields of ``scontrol show job -o <id>`` (e.g. JobState, TresPerJob, TimeLimit).

        Why: with no accounting daemon, slurmctld's record (kept for
        ``MinJobAge``) is the evidence of what SLURM was asked for and did.
        """
        proc = subprocess.run(
            ["scontrol", "show", "job", "-o", str(job_id)],
            capture_output=True, text=True, check=False, env=_clean_env(),
        )
        if proc.returncode != 0:
            raise ValueError(f"scontrol knows no job {job_id!r}: {proc.stderr.strip()}")
        return dict(re.findall(r"(\S+?)=(\S*)", proc.stdout))

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the daemons' logs, for failure messages."""
        out = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.state_dir / "log" / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(out)


def _script_env(state_dir: Path) -> dict[str, str]:
    return _clean_env({"BRAINAUG_SLURM_DIR": str(state_dir)})


def start_cluster(state_dir: str | os.PathLike[str] | None = None, timeout_s: int = 120) -> SlurmCluster:
    """Start the test cluster with ``start.sh`` (idempotent) and describe it.

    Args:
        state_dir: state directory; default ``$BRAINAUG_SLURM_DIR`` or /tmp/brainaug-slurm.
        timeout_s: limit for start.sh.

    Raises:
        RuntimeError: if the packages are missing or the node does not come up
            (the message holds start.sh's output with the daemons' log tails).
    """
    state = Path(state_dir or os.environ.get("BRAINAUG_SLURM_DIR") or DEFAULT_STATE_DIR)
    reason = missing_slurm_reason()
    if reason:
        raise RuntimeError(reason)
    proc = subprocess.run(
        ["bash", str(SLURM_DIR / "start.sh")],
        env=_script_env(state), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tests/slurm/start.sh failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    return SlurmCluster(state_dir=state, node=node, started_here="already running" not in proc.stderr)


def stop_cluster(cluster: SlurmCluster, timeout_s: int = 120) -> None:
    """Stop the daemons that ``start.sh`` recorded and restore /etc/slurm (``stop.sh``)."""
    proc = subprocess.run(
        ["bash", str(SLURM_DIR / "stop.sh")],
        env=_script_env(cluster.state_dir), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tests/slurm/stop.sh failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


@contextlib.contextmanager
def slurm_cluster(state_dir: str | os.PathLike[str] | None = None) -> Iterator[SlurmCluster]:
    """Context manager: a running test cluster, stopped afterwards if started here.

    A cluster that was already up (e.g. started by ``.ci/run``) is left running.
    """
    cluster = start_cluster(state_dir)
    try:
        yield cluster
    finally:
        if cluster.started_here:
            stop_cluster(cluster)
