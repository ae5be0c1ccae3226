# Results: leakage checks, the comparison table, GAN quality, figures, resource use.


rule results_table:
    input:
        metrics=classifier_outputs("metrics.json"),
        gan_metrics=gan_outputs("metrics.json"),
        splits=RESULTS / "splits.json",
    output:
        csv=report(
            RESULTS / "tables" / "augmentation_comparison.csv",
            caption="../report/augmentation_comparison.rst",
            category="Results",
        ),
        md=RESULTS / "tables" / "augmentation_comparison.md",
        tex=RESULTS / "tables" / "augmentation_comparison.tex",
        per_fold=RESULTS / "tables" / "per_fold.tsv",
    params:
        runs=CLASSIFIER_RUNS,
        gan_runs=GAN_RUNS,
        strategies=STRATEGIES,
        baseline=config["results"]["baseline"],
        control=CONTROL_BANNER,
    log:
        "logs/results_table/results_table.log",
    benchmark:
        RESULTS / "benchmarks/results_table/results_table.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/results_table.py"


rule gan_quality_table:
    input:
        metrics=gan_outputs("metrics.json"),
        classifier_metrics=gan_outputs("classifier_metrics.json"),
    output:
        csv=report(
            RESULTS / "tables" / "gan_quality.csv",
            caption="../report/gan_quality.rst",
            category="GAN",
        ),
    params:
        gan_runs=GAN_RUNS,
    log:
        "logs/gan_quality_table/gan_quality_table.log",
    benchmark:
        RESULTS / "benchmarks/gan_quality_table/gan_quality_table.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/gan_quality_table.py"


rule figures:
    input:
        table=RESULTS / "tables" / "augmentation_comparison.csv",
        per_fold=RESULTS / "tables" / "per_fold.tsv",
        metrics=classifier_outputs("metrics.json"),
        histories=classifier_outputs("history.tsv"),
    output:
        comparison=report(
            RESULTS / "figures" / "strategy_comparison.png",
            caption="../report/strategy_comparison.rst",
            category="Results",
        ),
        confusion=report(
            RESULTS / "figures" / "confusion_matrices.png",
            caption="../report/confusion_matrices.rst",
            category="Results",
        ),
        curves=report(
            RESULTS / "figures" / "learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Results",
        ),
    params:
        runs=CLASSIFIER_RUNS,
        classes=CLASSES,
        control=CONTROL_BANNER,
    log:
        "logs/figures/figures.log",
    benchmark:
        RESULTS / "benchmarks/figures/figures.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/figures.py"


rule gan_figures:
    """Only asked for when a strategy uses synthetic volumes (``final_outputs``)."""
    input:
        losses=gan_outputs("losses.tsv"),
        synthetic=RESULTS / "gan" / RUN.format(repeat=0, fold=0) / "synthetic.npz",
        volumes=RESULTS / "dataset" / "volumes.npy",
        index=RESULTS / "dataset" / "index.tsv",
        splits=RESULTS / "splits.json",
    output:
        real_vs_synthetic=report(
            RESULTS / "figures" / "real_vs_synthetic.png",
            caption="../report/real_vs_synthetic.rst",
            category="GAN",
        ),
        gan_losses=report(
            RESULTS / "figures" / "gan_losses.png",
            caption="../report/gan_losses.rst",
            category="GAN",
        ),
        gan_monitor=report(
            RESULTS / "figures" / "gan_fidelity.png",
            caption="../report/gan_fidelity.rst",
            category="GAN",
        ),
    params:
        gan_runs=GAN_RUNS,
        classes=CLASSES,
    log:
        "logs/gan_figures/gan_figures.log",
    benchmark:
        RESULTS / "benchmarks/gan_figures/gan_figures.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/gan_figures.py"


rule resource_summary:
    """Per-stage time and memory from every rule's `benchmark:` file."""
    input:
        RESULTS / "tables" / "augmentation_comparison.csv",
        if_gan("tables/gan_quality.csv"),
        RESULTS / "qc" / "summary.tsv",
    output:
        table=report(
            RESULTS / "tables" / "resources.tsv",
            caption="../report/resources.rst",
            category="Resources",
        ),
    params:
        benchmark_dir=RESULTS / "benchmarks",
    log:
        "logs/resource_summary/resource_summary.log",
    benchmark:
        # Written after the job ends, so it appears in the next run's summary.
        RESULTS / "benchmarks/resource_summary/resource_summary.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/resource_summary.py"


rule front_page:
    """The report's opening page (included by workflow/report/workflow.rst): the answer first."""
    input:
        # The table exists only once the leakage checks passed (rule results_table).
        table=RESULTS / "tables" / "augmentation_comparison.csv",
        figure=RESULTS / "figures" / "strategy_comparison.png",
        decisions=RESULTS / "qc" / "decisions.tsv",
        gan_quality=if_gan("tables/gan_quality.csv"),
    output:
        html=report(
            RESULTS / "report" / "front_page.html",
            caption="../report/front_page.rst",
            category="Summary",
        ),
    params:
        classes=CLASSES,
        baseline=config["results"]["baseline"],
        control=CONTROL_BANNER,
        qc_outliers=config["preprocess"]["qc_outliers"],
        n_classifier_runs=len(CLASSIFIER_RUNS),
        n_gans=len(GAN_RUNS) if USES_GAN else 0,
    log:
        "logs/front_page/front_page.log",
    benchmark:
        RESULTS / "benchmarks/front_page/front_page.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/front_page.py"
