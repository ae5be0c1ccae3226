"""The ``brainaug`` command line (called in-process through ``main``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import pytest
import SimpleITK as sitk

from brainaug.cli import build_parser, main
from brainaug.preprocess.register import resample_like
from brainaug.template import load_template


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "scan.nii.gz"
    head = resample_like(load_template().t1_head, [3.0] * 3)
    sitk.WriteImage(sitk.DICOMOrient(head, "LPS") * 800.0, str(path))
    return path


def test_preprocess_writes_output_png_and_prints_row(scan: Path, tmp_path: Path, capsys):
    out = tmp_path / "out" / "scan.nii.gz"
    rc = main(["preprocess", str(scan), str(out), "--size", "32", "--no-n4"])
    assert rc == 0
    row = json.loads(capsys.readouterr().out)
    assert row["scan_id"] == "scan" and row["n4_applied"] is False and row["correlation"] > 0.9
    assert nib.load(out).shape == (32, 32, 32)
    assert (tmp_path / "out" / "scan.png").stat().st_size > 1000


def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path: Path, capsys):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x00" * 100)
    out = tmp_path / "out.nii.gz"
    rc = main(["preprocess", str(bad), str(out), "--size", "32"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "broken.nii.gz" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "out.png").exists()


def test_bad_size_and_output_name_exit_2(scan: Path, tmp_path: Path, capsys):
    assert main(["preprocess", str(scan), str(tmp_path / "o.nii.gz"), "--size", "48"]) == 2
    assert "--size must be a power of two" in capsys.readouterr().err
    assert main(["preprocess", str(scan), str(tmp_path / "o.png")]) == 2
    assert "OUTPUT must end in .nii.gz" in capsys.readouterr().err


def test_parser_has_subcommands():
    parser = build_parser()
    args = parser.parse_args(["preprocess", "a.nii", "b.nii.gz", "--skull-stripped", "yes", "--threads", "2"])
    assert args.command == "preprocess" and args.skull_stripped == "yes" and args.threads == 2 and args.size == 64
    with pytest.raises(SystemExit, match="2"):
        parser.parse_args(["preprocess", "a.nii", "b.nii.gz", "--skull-stripped", "maybe"])


@pytest.mark.skipif(shutil.which("brainaug") is None, reason="console script not installed (pip install -e .)")
def test_console_script_help():
    proc = subprocess.run(["brainaug", "preprocess", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--skull-stripped" in proc.stdout


def test_unoriented_nifti_names_the_option(tmp_path: Path, capsys):
    import numpy as np

    bad = tmp_path / "noorient.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8)).astype("float32"), None), bad)
    rc = main(["preprocess", str(bad), str(tmp_path / "out.nii.gz"), "--size", "16"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "noorient.nii.gz has no orientation (qform_code = sform_code = 0)" in err and "--assume-orientation" in err
