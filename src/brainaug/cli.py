"""The ``brainaug`` command line: ``brainaug <subcommand> ...``.

Subcommands are registered in ``_SUBCOMMANDS`` (name -> (add_arguments, run)), so more
can be added next to ``preprocess`` without touching :func:`main`. User errors (bad
input file, bad option values) exit with status 2 and a one-line message naming the
file, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


class UserError(Exception):
    """A problem the user can fix (bad input or option); printed as one line, exit code 2."""


def _add_preprocess(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="input T1 scan: NIfTI, MGH/MGZ, NRRD/MHA file or DICOM series folder")
    parser.add_argument("output", help="output NIfTI (.nii.gz) in MNI template space")
    parser.add_argument("--size", type=int, default=64, help="voxels per axis S of the output (default 64)")
    parser.add_argument("--qc-png", default=None, help="QC three-plane picture (default: OUTPUT with .png)")
    parser.add_argument("--threads", type=int, default=1, help="SimpleITK threads (default 1)")
    parser.add_argument("--no-n4", action="store_true", help="skip N4 bias-field correction")
    parser.add_argument(
        "--skull-stripped",
        choices=("auto", "yes", "no"),
        default="auto",
        help="is the input already skull-stripped? (default: detect)",
    )
    parser.add_argument("--seed", type=int, default=0, help="registration sampling seed (default 0)")
    parser.add_argument(
        "--assume-orientation",
        default=None,
        metavar="CODE",
        help="for a NIfTI without orientation (qform_code = sform_code = 0) only: the axis code to assume, "
        "e.g. RAS or LPS (default: refuse such a file)",
    )


def _default_png(output: Path) -> Path:
    name = output.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return output.with_name(name[: -len(suffix)] + ".png")
    return output.with_name(name + ".png")


def _run_preprocess(args: argparse.Namespace) -> int:
    from brainaug.preprocess.pipeline import PreprocessSettings, preprocess_file
    from brainaug.template import output_grid

    output = Path(args.output)
    if not (output.name.endswith(".nii.gz") or output.name.endswith(".nii")):
        raise UserError(f"OUTPUT must end in .nii.gz or .nii, got {args.output}")
    qc_png = Path(args.qc_png) if args.qc_png else _default_png(output)
    try:
        output_grid(args.size)  # names the rule ("a power of two"), not the schema's list
        settings = PreprocessSettings.from_config(
            {"image_size": args.size, "n4": not args.no_n4, "skull_stripped": args.skull_stripped,
             "threads": args.threads, "seed": args.seed, "assume_orientation": args.assume_orientation}
        )
    except ValueError as err:
        raise UserError(str(err).replace("preprocess.image_size", "--size").replace("image_size", "--size")) from err
    try:
        row = preprocess_file(args.input, output, qc_png, args.size, settings)
    except (ValueError, TypeError, OSError, RuntimeError) as err:
        msg = " ".join(str(err).split()).replace("preprocess.assume_orientation", "--assume-orientation")
        if str(args.input) not in msg:
            msg = f"{args.input}: {msg}"
        raise UserError(msg) from err
    print(json.dumps(row))
    return 0


_SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "preprocess": (
        "preprocess one scan to S^3 in MNI space, scaled to [-1, 1], with a QC picture",
        _add_preprocess,
        _run_preprocess,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with one sub-parser per entry of ``_SUBCOMMANDS``."""
    from brainaug import __version__

    parser = argparse.ArgumentParser(prog="brainaug", description="brainaug: GAN augmentation for 3D brain MRI")
    parser.add_argument("--version", action="version", version=f"brainaug {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments, run) in _SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brainaug`` console script; returns the exit status.

    Args:
        argv: arguments without the program name (default ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except UserError as err:
        print(f"brainaug {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
