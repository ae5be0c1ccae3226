# Cross-validated classification: one job per (strategy, fold).


rule train_classifier:
    input:
        volumes=RESULTS / "dataset" / "volumes.npy",
        index=RESULTS / "dataset" / "index.tsv",
        splits=RESULTS / "splits.json",
        synthetic=synthetic_input,
    output:
        model=RESULTS / "classify" / "{strategy}" / "fold{fold}" / "model.pt",
        history=RESULTS / "classify" / "{strategy}" / "fold{fold}" / "history.tsv",
        predictions=RESULTS / "classify" / "{strategy}" / "fold{fold}" / "predictions.tsv",
        metrics=RESULTS / "classify" / "{strategy}" / "fold{fold}" / "metrics.json",
    params:
        classifier=config["classifier"],
        strategies=strategy_settings,
    log:
        "logs/train_classifier/{strategy}/fold{fold}.log",
    benchmark:
        RESULTS / "benchmarks/train_classifier/{strategy}/fold{fold}.tsv"
    threads: res("classifier", "threads", 1)
    resources:
        gpu=res("classifier", "gpu", 0),
        mem_mb=res("classifier", "mem_mb", 4000),
        runtime=res("classifier", "runtime", 60),
    script:
        "../scripts/train_classifier.py"


rule gan_classifier_metrics:
    """GAN metrics that need a classifier trained on real data: the fold's judge (the baseline when real-only)."""
    input:
        model=judge_model,
        synthetic=RESULTS / "gan" / "fold{fold}" / "synthetic.npz",
        volumes=RESULTS / "dataset" / "volumes.npy",
        index=RESULTS / "dataset" / "index.tsv",
        splits=RESULTS / "splits.json",
    output:
        metrics=RESULTS / "gan" / "fold{fold}" / "classifier_metrics.json",
    log:
        "logs/gan_classifier_metrics/fold{fold}.log",
    benchmark:
        RESULTS / "benchmarks/gan_classifier_metrics/fold{fold}.tsv"
    threads: 1
    resources:
        mem_mb=res("classifier", "mem_mb", 4000),
        runtime=30,
    script:
        "../scripts/gan_classifier_metrics.py"
