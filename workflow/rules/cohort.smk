# Ingestion: the embedded synthetic cohort (when no data is configured), the
# validated cohort table, and the subject-level folds.


rule synthetic_cohort:
    output:
        directory(RESULTS / "synthetic_cohort"),
    params:
        settings=config["synthetic"],
        classes=CLASSES,
    log:
        "logs/synthetic_cohort/synthetic_cohort.log",
    benchmark:
        RESULTS / "benchmarks/synthetic_cohort/synthetic_cohort.tsv"
    # Snakemake scales this down to --cores on a small machine.
    threads: 2
    resources:
        mem_mb=res("cohort", "mem_mb", 2000),
        runtime=res("cohort", "runtime", 30),
    script:
        "../scripts/synthetic_cohort.py"


checkpoint cohort:
    input:
        unpack(cohort_source_input),
    output:
        table=RESULTS / "cohort.tsv",
    params:
        data=config["data"],
        n_folds=N_FOLDS,
        controls=config["controls"],
        assume_orientation=config["preprocess"]["assume_orientation"],
    log:
        "logs/cohort/cohort.log",
    benchmark:
        RESULTS / "benchmarks/cohort/cohort.tsv"
    threads: 1
    resources:
        mem_mb=res("cohort", "mem_mb", 2000),
        runtime=res("cohort", "runtime", 30),
    script:
        "../scripts/cohort.py"


rule splits:
    input:
        table=RESULTS / "cohort.tsv",
    output:
        splits=RESULTS / "splits.json",
    params:
        cv=config["cv"],
    log:
        "logs/splits/splits.log",
    benchmark:
        RESULTS / "benchmarks/splits/splits.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/splits.py"
