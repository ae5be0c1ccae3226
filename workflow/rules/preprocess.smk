# Preprocessing: one job per scan, then the QC summary and the stacked dataset.


rule preprocess:
    input:
        image=scan_image,
    output:
        volume=RESULTS / "preprocessed" / "{scan}.nii.gz",
        qc_png=RESULTS / "qc" / "{scan}.png",
        qc_row=RESULTS / "qc" / "{scan}.json",
    params:
        settings=preprocess_settings(),
    log:
        "logs/preprocess/{scan}.log",
    benchmark:
        RESULTS / "benchmarks/preprocess/{scan}.tsv"
    threads: 1
    resources:
        mem_mb=res("preprocess", "mem_mb", 3000),
        runtime=res("preprocess", "runtime", 20),
    script:
        "../scripts/preprocess.py"


rule qc_summary:
    input:
        rows=qc_rows,
        volumes=preprocessed_volumes,
    output:
        summary=report(
            RESULTS / "qc" / "summary.tsv",
            caption="../report/qc_summary.rst",
            category="Quality control",
        ),
        montage=report(
            RESULTS / "figures" / "qc_montage.png",
            caption="../report/qc_montage.rst",
            category="Quality control",
        ),
    params:
        min_correlation=config["preprocess"]["qc_min_correlation"],
    log:
        "logs/qc_summary/qc_summary.log",
    benchmark:
        RESULTS / "benchmarks/qc_summary/qc_summary.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/qc_summary.py"


rule dataset:
    input:
        table=RESULTS / "cohort.tsv",
        volumes=preprocessed_volumes,
        qc=RESULTS / "qc" / "summary.tsv",
    output:
        volumes=RESULTS / "dataset" / "volumes.npy",
        index=RESULTS / "dataset" / "index.tsv",
        decisions=report(
            RESULTS / "qc" / "decisions.tsv",
            caption="../report/qc_decisions.rst",
            category="Quality control",
        ),
    params:
        image_size=config["preprocess"]["image_size"],
        qc_outliers=config["preprocess"]["qc_outliers"],
        min_correlation=config["preprocess"]["qc_min_correlation"],
        duplicate_correlation=config["preprocess"]["duplicate_correlation"],
    log:
        "logs/dataset/dataset.log",
    benchmark:
        RESULTS / "benchmarks/dataset/dataset.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        "../scripts/dataset.py"
