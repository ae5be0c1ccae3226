"""Run the brainaug workflow the way a user does, in a scratch folder, for tests.

Workflow tests must exercise what a user types (``snakemake --configfile
my_study.yaml``), not the library underneath: config validation in
``common.smk``, the console message of a failing rule, and which files are
left behind all happen only there. This module builds tiny cohorts (NIfTI
blobs and a manifest), writes a config that is merged over the repository's
``config/config.yaml``, runs Snakemake in a subprocess with a bounded time, and
lists what the run left in ``results/``.

Importing it from a test (``tests`` is not a package; see
``tests/brainaug_testing.py``)::

    from brainaug_testing import load_test_module

    helpers = load_test_module("workflow/helpers.py")

Typical use::

    rows = helpers.make_manifest_rows(tmp_path)            # 2 classes x 3 subjects
    manifest = helpers.write_manifest(tmp_path / "manifest.tsv", rows)
    cfg = helpers.write_config(tmp_path / "cfg.yaml", helpers.manifest_config(manifest))
    run = helpers.run_workflow(tmp_path / "work", cfg, timeout=900)
    assert run.returncode == 0, run.describe()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import yaml

__all__ = [
    "REPO_ROOT",
    "SNAKEFILE",
    "WorkflowRun",
    "blob_volume",
    "write_volume",
    "write_header_only",
    "write_without_orientation",
    "make_manifest_rows",
    "write_manifest",
    "manifest_config",
    "write_config",
    "snakemake_command",
    "run_workflow",
    "result_files",
]

#: The repository under test (this file is ``<repo>/tests/workflow/helpers.py``).
REPO_ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO_ROOT / "Snakefile"

#: Voxel size of the test blobs: 20x24x20 voxels of 8 mm cover a head-sized field of view.
BLOB_SPACING_MM = 8.0

MANIFEST_COLUMNS = ("subject_id", "session_id", "image", "diagnosis", "age", "sex")


@dataclass
class WorkflowRun:
    """Outcome of one Snakemake invocation.

    Attributes:
        command: the argument list that was run.
        workdir: the ``--directory`` of the run (holds ``results/``, ``logs/``).
        returncode: Snakemake's exit status.
        stdout, stderr: its console output.
        seconds: wall-clock time of the run.
    """

    command: list[str]
    workdir: Path
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    results_dir: str = "results"
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def output(self) -> str:
        """stdout and stderr together (Snakemake writes most of its messages to stderr)."""
        return self.stdout + "\n" + self.stderr

    @property
    def results(self) -> Path:
        """The run's results folder."""
        return self.workdir / self.results_dir

    def error_lines(self) -> list[str]:
        """The one-line messages of failing brainaug steps (``brainaug: error in <rule> ...``)."""
        return [line for line in self.output.splitlines() if line.startswith("brainaug: error in ")]

    def describe(self) -> str:
        """Command, exit status and the console output, for assertion messages."""
        return (
            f"$ {' '.join(self.command)}\n(exit {self.returncode} after {self.seconds:.1f} s)\n"
            f"--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-6000:]}"
        )


def blob_volume(shape: Sequence[int] = (20, 24, 20), seed: int = 0) -> np.ndarray:
    """A head-like test volume: a bright noisy ellipsoid on a dim noisy background.

    Args:
        shape: voxels per axis ``(X, Y, Z)``.
        seed: noise seed (the same seed gives the same array).

    Returns:
        float32 array of ``shape``, finite and non-constant.
    """
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1.0, 1.0, int(n)) for n in shape], indexing="ij")
    radius = sum((g / r) ** 2 for g, r in zip(grids, (0.75, 0.8, 0.75)))
    inside = radius < 1.0
    volume = rng.uniform(0.0, 5.0, size=tuple(int(n) for n in shape))
    volume[inside] = 100.0 + 40.0 * (radius[inside] < 0.4) + rng.normal(0.0, 5.0, size=int(inside.sum()))
    return volume.astype(np.float32)


def write_volume(path: str | os.PathLike[str], data: np.ndarray, spacing: float = BLOB_SPACING_MM) -> Path:
    """Write ``data`` as NIfTI with an isotropic, centred RAS affine.

    Any shape is written as given (2D and 4D too), so tests can make bad images.

    Args:
        path: ``.nii`` or ``.nii.gz`` file to write (parents are created).
        data: voxel array ``(X, Y[, Z[, T]])``.
        spacing: voxel size in mm.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    spatial = np.array([(n - 1) / 2.0 for n in (list(data.shape[:3]) + [1, 1, 1])[:3]])
    affine[:3, 3] = -spacing * spatial
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


def write_header_only(path: str | os.PathLike[str], shape: Sequence[int], payload: int = 600) -> Path:
    """A gzipped NIfTI whose header claims ``shape`` (int16) but which holds ``payload`` zero bytes.

    A corrupt or hostile header: 4000^3 voxels claimed over a file of about 100 bytes.
    """
    import gzip

    header = nib.Nifti1Header()
    header.set_data_shape(tuple(int(s) for s in shape))
    header.set_data_dtype(np.int16)
    header.set_qform(np.eye(4), 1)
    header.set_sform(np.eye(4), 1)
    header["vox_offset"] = 352
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(header.binaryblock + b"\0" * (4 + payload))
    return path


def write_without_orientation(
    path: str | os.PathLike[str], data: np.ndarray, zero_pixdim: bool = False, spacing: float = BLOB_SPACING_MM
) -> Path:
    """Write ``data`` as NIfTI with ``qform_code = sform_code = 0`` (no orientation), voxels of ``spacing`` mm.

    With ``zero_pixdim`` the voxel sizes are 0 instead (nibabel refuses to write that,
    so the header bytes are patched: pixdim is 8 float32 at byte 76).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(data), None)
    image.header.set_zooms((spacing,) * 3)
    if not zero_pixdim:
        nib.save(image, str(path))
        return path
    assert path.suffix == ".nii", "zero_pixdim patches an uncompressed .nii"
    nib.save(image, str(path))
    raw = bytearray(path.read_bytes())
    raw[80:92] = np.zeros(3, dtype="<f4").tobytes()
    path.write_bytes(bytes(raw))
    return path


def make_manifest_rows(
    root: str | os.PathLike[str],
    classes: Sequence[str] = ("CN", "AD"),
    subjects_per_class: int = 3,
    shape: Sequence[int] = (20, 24, 20),
    seed: int = 0,
) -> list[dict[str, str]]:
    """Write one blob image per subject under ``root/images`` and return manifest rows.

    Subjects are named ``<class><i>`` (``CN0``, ``CN1``, ... ``AD0`` ...), one
    session ``ses-01`` each, images referenced relative to ``root`` (where the
    manifest goes), as a user would write them.

    Args:
        root: folder that will hold the manifest and ``images/``.
        classes: diagnoses, ``subjects_per_class`` subjects each.
        subjects_per_class: subjects (= scans) per class.
        shape: voxels per axis of each image.
        seed: base seed; subject ``k`` gets ``seed + k``.

    Returns:
        Rows (dicts with :data:`MANIFEST_COLUMNS`) in class order; edit them
        and pass them to :func:`write_manifest`.
    """
    root = Path(root)
    rows = []
    k = 0
    for diagnosis in classes:
        for i in range(subjects_per_class):
            subject = f"{diagnosis}{i}"
            image = Path("images") / f"{subject}.nii.gz"
            write_volume(root / image, blob_volume(shape, seed=seed + k))
            rows.append(
                {
                    "subject_id": subject,
                    "session_id": "ses-01",
                    "image": image.as_posix(),
                    "diagnosis": diagnosis,
                    "age": str(60 + k),
                    "sex": "F" if k % 2 else "M",
                }
            )
            k += 1
    return rows


def write_manifest(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
) -> Path:
    """Write manifest rows as TSV (CSV when ``path`` ends in ``.csv``).

    Args:
        path: manifest file.
        rows: one mapping per scan.
        columns: columns in order (default: :data:`MANIFEST_COLUMNS` present in
            the first row, then any others). Leave one out to make a manifest
            that lacks it.

    Returns:
        The path written. The header is line 1, ``rows[i]`` is line ``i + 2``.
    """
    path = Path(path)
    rows = [dict(r) for r in rows]
    if columns is None:
        first = rows[0] if rows else {}
        columns = [c for c in MANIFEST_COLUMNS if c in first] + [c for c in first if c not in MANIFEST_COLUMNS]
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    lines = [sep.join(columns)] + [sep.join(str(r.get(c, "")) for c in columns) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def manifest_config(
    manifest: str | os.PathLike[str],
    classes: Sequence[str] = ("CN", "AD"),
    n_folds: int = 2,
    image_size: int = 16,
    **sections: Mapping[str, Any],
) -> dict[str, Any]:
    """A small config for a manifest cohort (merged by Snakemake over config/config.yaml).

    Args:
        manifest: the manifest (made absolute, so the run's directory does not matter).
        classes: ``data.classes``.
        n_folds: ``cv.n_folds`` (the schema's minimum is 2).
        image_size: ``preprocess.image_size`` (16 keeps a test run short).
        **sections: further sections; a section given here is merged key by key
            into the defaults above (``data={"exclude_diagnoses": ["MCI"]}``).

    Returns:
        The config dict for :func:`write_config`.
    """
    config: dict[str, Any] = {
        "data": {"source": "manifest", "manifest": str(Path(manifest).resolve()), "classes": list(classes)},
        "cv": {"n_folds": int(n_folds)},
        # Blobs are not brains: every one registers to the template at r ~ 0.45 and is
        # QC-flagged, so tests that train on them say so (the default, stop, would stop them).
        "preprocess": {"image_size": int(image_size), "qc_outliers": "keep"},
    }
    for name, values in sections.items():
        if isinstance(values, Mapping) and isinstance(config.get(name), dict):
            config[name].update(values)
        else:
            config[name] = values
    return config


def write_config(path: str | os.PathLike[str], config: Mapping[str, Any]) -> Path:
    """Write a config dict as YAML (what ``--configfile`` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(_plain(config), sort_keys=False), encoding="utf-8")
    return path


def _plain(value: Any) -> Any:
    """Tuples and Paths to lists and strings, so ``yaml.safe_dump`` accepts them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def snakemake_command(
    workdir: str | os.PathLike[str],
    configfile: str | os.PathLike[str] | None = None,
    targets: Sequence[str] = (),
    cores: int = 2,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The command line a user would type, with this repository's Snakefile.

    Targets come first: ``--configfile`` takes several values and would
    swallow targets written after it.
    """
    command = [sys.executable, "-m", "snakemake", *targets]
    command += ["--snakefile", str(SNAKEFILE), "--directory", str(workdir), "--cores", str(cores)]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    return command + list(extra_args)


def _environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's environment with this checkout's ``src`` first on PYTHONPATH.

    Jobs import ``brainaug`` in fresh interpreters; this makes them import the
    code under test even where another checkout is pip-installed. One thread
    per BLAS/ITK pool keeps parallel jobs from oversubscribing small machines.
    """
    env = dict(os.environ)
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        env.setdefault(name, "1")
    env.setdefault("MPLBACKEND", "Agg")
    env.update(extra or {})
    return env


def run_workflow(
    workdir: str | os.PathLike[str],
    configfile: str | os.PathLike[str] | None = None,
    targets: Sequence[str] = (),
    cores: int = 2,
    extra_args: Sequence[str] = (),
    timeout: float = 600.0,
    env: Mapping[str, str] | None = None,
    results_dir: str = "results",
) -> WorkflowRun:
    """Run Snakemake in a subprocess and return its exit status and output.

    The run gets its own process group; if it exceeds ``timeout`` the whole
    group (Snakemake and the jobs it started) is killed and
    ``subprocess.TimeoutExpired`` is raised, so a hung workflow fails a test
    instead of hanging the suite.

    Args:
        workdir: ``--directory`` of the run (created if missing).
        configfile: YAML merged over ``config/config.yaml`` (``None``: the shipped config).
        targets: files or rules to build (empty: the default target ``all``).
        cores: ``--cores``.
        extra_args: further Snakemake options (``["--keep-going"]``, ``["-n"]``).
        timeout: seconds before the run is killed.
        env: extra environment variables.
        results_dir: the config's ``results_dir`` (for :attr:`WorkflowRun.results`).

    Returns:
        A :class:`WorkflowRun`.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    command = snakemake_command(workdir, configfile, targets, cores, extra_args)
    full_env = _environment(env)
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Not the locale's codec: under a C locale it is ASCII, and messages quote
        # file contents (a non-UTF-8 manifest line shows U+FFFD).
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stdout, stderr = process.communicate()
        raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr) from None
    return WorkflowRun(
        command=command,
        workdir=workdir,
        returncode=process.returncode,
        stdout=stdout,
        stderr=stderr,
        seconds=time.monotonic() - start,
        results_dir=results_dir,
        env=full_env,
    )


def result_files(results: str | os.PathLike[str]) -> list[str]:
    """Every file under ``results`` (relative POSIX paths, sorted); ``[]`` if it does not exist."""
    results = Path(results)
    if not results.is_dir():
        return []
    return sorted(p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file())
