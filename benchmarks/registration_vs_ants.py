"""Registration to MNI, side by side: the project's preprocessing against ANTs affine.

Cases are built from what ships in packages: Colin27 (``ch2`` from Debian's
mricron-data, 1 mm, skull on) as shipped, resampled to 1.5 mm and to 1x1x3 mm,
reoriented (LIA axis order, tilted 12 degrees and shifted 25 mm off the MNI
origin, as a scanner would store it), with a strong smooth bias field, with lower
SNR (Rician noise), cropped to a smaller field of view, a 1.5 mm copy with a bias
field and noise together; and a few scans of the embedded synthetic cohort.

Each case is preprocessed two ways:

- the project: ``brainaug.preprocess.preprocess_scan`` (default settings, one thread);
- ANTs (antspyx): ``n4_bias_field_correction``, then
  ``registration(type_of_transform="antsRegistrationSyNQuick[a]")`` to the bundled
  brain-only MNI template (1.5 mm) with the template brain mask as fixed mask.

Both are then put on the project's exact S^3 output grid with the project's
smoothing, mask and scaling (``brainaug.preprocess.pipeline.finish_on_grid``) and
scored by ONE metric, ``template_correlation``: the Pearson correlation with the
template brain inside the template brain mask, the number ``qc/summary.tsv`` reports.
CPU seconds are ``time.process_time`` of the whole call (all threads; one ITK thread).

ANTs results are cached in the work folder (they do not depend on this project's
code), so a rerun after a pipeline change costs only the project side.

antspyx pins numpy < 2.4, which the workflow's SLURM plugin does not allow, so
install it in its own environment (the ``bench`` extra lists it)::

    python -m venv --system-site-packages .venv-bench
    .venv-bench/bin/pip install antspyx==0.6.3
    OMP_NUM_THREADS=1 ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1 \
        .venv-bench/bin/python benchmarks/registration_vs_ants.py

Usage:
    python benchmarks/registration_vs_ants.py [--cases a,b] [--skip-ants] [--tag after]
        [--preprocess '{"n4_mask": "head"}'] [--default-run-timing]

``--preprocess`` sets project settings over the defaults (``n4_mask: head`` with
``registration_refine_on_brain: false`` is the pipeline before issue 13);
``--default-run-timing`` times the default run's preprocessing (32^3) on the six
generated cohort scans instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from brainaug.preprocess import PreprocessSettings, preprocess_scan  # noqa: E402
from brainaug.preprocess.pipeline import finish_on_grid, template_correlation, template_on_grid  # noqa: E402
from brainaug.preprocess.register import resample_like  # noqa: E402
from brainaug.template import load_template  # noqa: E402

CH2 = Path("/usr/share/mricron/templates/ch2.nii.gz")
HERE = Path(__file__).resolve().parent
SIZES = (64, 32)


# --------------------------------------------------------------------------- cases


def _noisy(image: sitk.Image, sigma_fraction: float, seed: int) -> sitk.Image:
    """Rician noise with SD ``sigma_fraction`` x the 99th intensity percentile."""
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    sigma = sigma_fraction * float(np.percentile(arr, 99))
    rng = np.random.default_rng(seed)
    out = np.sqrt((arr + rng.normal(0, sigma, arr.shape)) ** 2 + rng.normal(0, sigma, arr.shape) ** 2)
    img = sitk.GetImageFromArray(out.astype(np.float32))
    img.CopyInformation(image)
    return img


def _biased(image: sitk.Image, strength: float = 0.9) -> sitk.Image:
    """Multiply by a smooth field exp(strength * (0.6 x + 0.5 y - 0.4 z + 0.5 x y - 0.4 z^2)): 0.66-1.64 over Colin27's brain."""
    size = np.asarray(image.GetSize())
    idx = np.stack(np.meshgrid(*[np.linspace(-1, 1, int(n)) for n in size[::-1]], indexing="ij"))
    z, y, x = idx
    log_field = strength * (0.6 * x + 0.5 * y - 0.4 * z + 0.5 * x * y - 0.4 * z * z)
    arr = sitk.GetArrayFromImage(image) * np.exp(log_field).astype(np.float32)
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.CopyInformation(image)
    return img


def _reoriented(image: sitk.Image) -> sitk.Image:
    """LIA 1 mm 256x256x176 grid, tilted 12 degrees (pitch) and 25 mm off centre: scanner-like."""
    ref = sitk.Image([256, 176, 256], sitk.sitkFloat32)  # L-R 256, I-S 176, A-P 256
    ref = sitk.DICOMOrient(ref, "LIA")
    ref.SetSpacing((1.0, 1.0, 1.0))
    rot = sitk.Euler3DTransform()
    rot.SetRotation(np.deg2rad(12.0), 0.0, np.deg2rad(-4.0))
    direction = np.asarray(rot.GetMatrix()).reshape(3, 3) @ np.asarray(ref.GetDirection()).reshape(3, 3)
    ref.SetDirection([float(v) for v in direction.ravel()])
    centre = np.array(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))
    ref_centre = np.array(ref.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in ref.GetSize()]))
    ref.SetOrigin(tuple(np.array(ref.GetOrigin()) + centre - ref_centre))
    out = sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    # World coordinates of a scanner, not MNI's: move the head 25 mm.
    out.SetOrigin(tuple(np.array(out.GetOrigin()) + np.array([10.0, -20.0, 12.0])))
    return out


def _cropped(image: sitk.Image) -> sitk.Image:
    """A tight field of view around Colin27's brain (1 mm, 181x217x181): ears, nose, the back of the
    head and the vertex cut, 6-8 mm left beside the brain, nothing below it."""
    return sitk.Crop(image, [12, 12, 0], [12, 12, 20])


def build_cases(work: Path, n_cohort: int = 3) -> dict[str, Path]:
    """Write every case as NIfTI under ``work/cases`` (once) and return {name: path}."""
    out = work / "cases"
    out.mkdir(parents=True, exist_ok=True)
    ch2 = sitk.ReadImage(str(CH2), sitk.sitkFloat32)
    builders = {
        "colin_1mm": lambda: ch2,
        "colin_1.5mm": lambda: resample_like(ch2, [1.5] * 3),
        "colin_1x1x3mm": lambda: resample_like(ch2, [1.0, 1.0, 3.0]),
        "colin_LIA_tilted": lambda: _reoriented(ch2),
        "colin_bias": lambda: _biased(ch2),
        "colin_low_snr": lambda: _noisy(ch2, 0.06, seed=1),
        "colin_cropped_fov": lambda: _cropped(ch2),
        "colin_1.5mm_bias_noise": lambda: _noisy(_biased(resample_like(ch2, [1.5] * 3)), 0.04, seed=2),
    }
    paths = {}
    for name, build in builders.items():
        path = out / f"{name}.nii.gz"
        if not path.exists():
            sitk.WriteImage(build(), str(path))
        paths[name] = path
    cohort = work / "cohort"
    if not (cohort / "participants.tsv").exists():
        from brainaug.cohort.synthetic import make_synthetic_cohort

        # The default run's generator and seed (config/config.yaml), two subjects per class.
        make_synthetic_cohort(cohort, n_per_class=2, seed=0, skull_probability=0.5, max_voxels=1_500_000)
    for path in sorted(cohort.glob("sub-*/anat/*_T1w.nii.gz"))[:n_cohort]:
        paths[f"cohort_{path.name.split('_')[0]}"] = path
    return paths


# --------------------------------------------------------------------------- the two methods


def run_project(path: Path, size: int, overrides: dict | None = None) -> dict:
    settings = PreprocessSettings.from_config({**(overrides or {}), "image_size": size, "threads": 1})
    t0 = time.process_time()
    res = preprocess_scan(path, size, settings)
    cpu = time.process_time() - t0
    return {"corr": template_correlation(res.volume, size), "cpu_s": cpu, "qc_corr": res.qc["correlation"],
            "stripped": res.qc["skull_stripped_input"]}


def _ants_to_sitk(img) -> sitk.Image:  # noqa: ANN001 - an ants.ANTsImage
    out = sitk.GetImageFromArray(img.numpy().transpose(2, 1, 0).astype(np.float32))
    out.SetOrigin(tuple(float(v) for v in img.origin))
    out.SetSpacing(tuple(float(v) for v in img.spacing))
    out.SetDirection(tuple(float(v) for v in np.asarray(img.direction).ravel()))
    return out


def _sitk_to_ants(image: sitk.Image):  # noqa: ANN202
    import ants

    arr = sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(np.float32)
    return ants.from_numpy(arr, origin=list(image.GetOrigin()), spacing=list(image.GetSpacing()),
                           direction=np.asarray(image.GetDirection()).reshape(3, 3))


def run_ants(path: Path, cache: Path) -> dict:
    """ANTs N4 + antsRegistrationSyNQuick[a]; caches the corrected scan, the transform and the CPU time."""
    corrected_path, transform_path, meta_path = (cache / "n4.nii.gz", cache / "affine.mat", cache / "meta.json")
    if not meta_path.exists():
        import ants

        cache.mkdir(parents=True, exist_ok=True)
        tpl = load_template()
        fixed = _sitk_to_ants(tpl.t1_brain)
        fixed_mask = _sitk_to_ants(sitk.Cast(tpl.brain_mask, sitk.sitkFloat32))
        t0 = time.process_time()
        moving = ants.image_read(str(path))
        corrected = ants.n4_bias_field_correction(moving)
        reg = ants.registration(fixed, corrected, type_of_transform="antsRegistrationSyNQuick[a]",
                                mask=fixed_mask, outprefix=str(cache / "ants_"))
        cpu = time.process_time() - t0
        ants.image_write(corrected, str(corrected_path))
        os.replace(reg["fwdtransforms"][0], transform_path)
        meta_path.write_text(json.dumps({"cpu_s": cpu}))
    corrected = sitk.ReadImage(str(corrected_path), sitk.sitkFloat32)
    # ANTs's forward transform maps fixed (template) points to moving (scan) points: what Resample needs.
    transform = sitk.ReadTransform(str(transform_path))
    meta = json.loads(meta_path.read_text())
    scores = {size: finish_on_grid(corrected, transform, size)[3] for size in SIZES}
    return {"corr": scores[64], "corr32": scores[32], "cpu_s": meta["cpu_s"]}


# --------------------------------------------------------------------------- report


def sanity_bounds(unregistered: Path, registered: Path) -> dict[str, dict[int, float]]:
    """The metric's scale: the template itself, an unregistered scan (identity transform), and one
    scan registered by the project, then moved off by known amounts (what a misregistration scores)."""
    tpl = load_template()
    scan = sitk.ReadImage(str(unregistered), sitk.sitkFloat32)
    good = preprocess_scan(registered, 64, PreprocessSettings.from_config({"image_size": 64, "threads": 1}))
    moving = sitk.ReadImage(str(registered), sitk.sitkFloat32)
    centre = np.asarray(good.transform.GetCenter())

    def moved(shift_mm: float = 0.0, angle_deg: float = 0.0) -> sitk.Transform:
        off = sitk.Euler3DTransform()
        off.SetCenter([float(c) for c in centre])
        off.SetRotation(np.deg2rad(angle_deg), 0.0, 0.0)
        off.SetTranslation([0.0, float(shift_mm), 0.0])
        return sitk.CompositeTransform([good.transform, off])

    cases = {
        "template itself": (tpl.t1_brain, sitk.Transform()),
        f"{unregistered.name.split('.')[0]} unregistered": (scan, sitk.Transform()),
        f"{registered.name.split('.')[0]} registered": (moving, good.transform),
        "  then 3 mm off (A-P)": (moving, moved(3.0)),
        "  then 6 mm off (A-P)": (moving, moved(6.0)),
        "  then 10 mm off (A-P)": (moving, moved(10.0)),
        "  then 5 degrees (pitch)": (moving, moved(angle_deg=5.0)),
        "  then 10 degrees (pitch)": (moving, moved(angle_deg=10.0)),
    }
    return {name: {size: round(finish_on_grid(img, tr, size)[3], 3) for size in SIZES}
            for name, (img, tr) in cases.items()}


def write_outputs(rows: list[dict], tag: str, outdir: Path) -> None:
    import pandas as pd

    df = pd.DataFrame(rows)
    outdir.mkdir(parents=True, exist_ok=True)
    df.to_csv(outdir / f"registration_vs_ants_{tag}.csv", index=False, float_format="%.4f")
    lines = ["| case | project corr 64³ | project corr 32³ | project CPU s | ANTs corr 64³ | ANTs corr 32³ | ANTs CPU s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['project_corr']:.3f} | {r['project_corr32']:.3f} | {r['project_cpu_s']:.1f} "
                     f"| {r.get('ants_corr', float('nan')):.3f} | {r.get('ants_corr32', float('nan')):.3f} "
                     f"| {r.get('ants_cpu_s', float('nan')):.0f} |")
    (outdir / f"registration_vs_ants_{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    x = np.arange(len(df))
    before_csv = outdir / "registration_vs_ants_before.csv"
    if tag != "before" and before_csv.exists():
        before = pd.read_csv(before_csv).set_index("case").reindex(df["case"])
        ax1.bar(x - 0.3, before["project_corr"].to_numpy(), 0.3, color="0.75", label="brainaug before")
    ax1.bar(x, df["project_corr"], 0.3, label="brainaug")
    if "ants_corr" in df:
        ax1.bar(x + 0.3, df["ants_corr"], 0.3, label="ANTs affine (SyNQuick[a])")
    ax1.set_ylim(0.4, 1.1)
    ax1.set_ylabel("correlation with template brain (64³)")
    ax1.set_xticks(x, df["case"], rotation=45, ha="right")
    ax1.legend(loc="upper left", ncols=3, fontsize=8)
    ax2.bar(x - 0.2, df["project_cpu_s"], 0.4, label="brainaug")
    if "ants_cpu_s" in df:
        ax2.bar(x + 0.2, df["ants_cpu_s"], 0.4, label="ANTs (N4 + SyNQuick[a])")
    ax2.set_yscale("log")
    ax2.set_ylabel("CPU seconds per scan (one thread)")
    ax2.set_xticks(x, df["case"], rotation=45, ha="right")
    ax2.axhline(15, color="k", ls=":", lw=1)
    ax2.legend(loc="upper left")
    fig.savefig(outdir / f"registration_vs_ants_{tag}.png", dpi=90)


def default_run_timing(cohort: Path, overrides: dict | None = None, rounds: int = 2) -> int:
    """CPU seconds per scan of the default run's preprocessing (config/config.yaml: 32^3) on the cohort scans.

    Each scan is timed ``rounds`` times and the fastest kept (other jobs on the machine only add time).
    """
    settings = PreprocessSettings.from_config({**(overrides or {}), "image_size": 32, "threads": 1})
    scans = sorted(cohort.glob("sub-*/anat/*_T1w.nii.gz"))
    preprocess_scan(scans[0], 32, settings)  # warm-up: template and caches
    cpu = []
    for path in scans:
        times = []
        for _ in range(rounds):
            t0 = time.process_time()
            res = preprocess_scan(path, 32, settings)
            times.append(time.process_time() - t0)
        cpu.append(min(times))
        print(json.dumps({"scan": path.name, "cpu_s": round(cpu[-1], 3), "corr": round(res.qc["correlation"], 4),
                          "stripped": res.qc["skull_stripped_input"]}), flush=True)
    print(json.dumps({"mean_cpu_s": round(float(np.mean(cpu)), 3), "n": len(cpu)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=HERE / "out" / "registration_vs_ants")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--skip-ants", action="store_true", help="project side only (cached ANTs results are still read)")
    parser.add_argument("--ants-only", action="store_true", help="run (and cache) the ANTs side only")
    parser.add_argument("--tag", default="after", help="suffix of the table, CSV and figure")
    parser.add_argument("--outdir", type=Path, default=HERE)
    parser.add_argument("--preprocess", type=json.loads, default={},
                        help='project settings over the defaults, as JSON, e.g. \'{"n4_mask": "head"}\'')
    parser.add_argument("--default-run-timing", action="store_true",
                        help="only time the default run's preprocessing (32^3) on the 6 generated cohort scans")
    args = parser.parse_args(argv)
    if not CH2.exists():
        print(f"{CH2} missing: apt-get install mricron-data", file=sys.stderr)
        return 2
    cases = build_cases(args.work)
    if args.default_run_timing:
        return default_run_timing(args.work / "cohort", args.preprocess)
    if args.cases:
        cases = {k: v for k, v in cases.items() if k in args.cases.split(",")}
    template_on_grid(64), template_on_grid(32)
    rows = []
    for name, path in cases.items():
        row: dict = {"case": name}
        cache = args.work / "ants" / name
        if args.ants_only or not args.skip_ants or (cache / "meta.json").exists():
            a = run_ants(path, cache)
            row.update(ants_corr=a["corr"], ants_corr32=a["corr32"], ants_cpu_s=a["cpu_s"])
        if not args.ants_only:
            p64, p32 = run_project(path, 64, args.preprocess), run_project(path, 32, args.preprocess)
            row.update(project_corr=p64["corr"], project_corr32=p32["corr"], project_cpu_s=p64["cpu_s"],
                       project_cpu_s_32=p32["cpu_s"], stripped=p64["stripped"])
        print(json.dumps(row), flush=True)
        rows.append(row)
    if not args.ants_only:
        if {"colin_LIA_tilted", "colin_1mm"} <= set(cases):
            bounds = sanity_bounds(cases["colin_LIA_tilted"], cases["colin_1mm"])
            lines = ["| what | corr 64³ | corr 32³ |", "|---|---|---|"]
            lines += [f"| {k} | {v[64]:.3f} | {v[32]:.3f} |" for k, v in bounds.items()]
            (args.outdir / f"registration_metric_scale_{args.tag}.md").write_text("\n".join(lines) + "\n")
            print("\n".join(lines))
        write_outputs(rows, args.tag, args.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
