# Cross-validated classification: one job per (strategy, repeat, fold).


rule train_classifier:
    input:
        volumes=RESULTS / "dataset" / "volumes.npy",
        index=RESULTS / "dataset" / "index.tsv",
        splits=RESULTS / "splits.json",
        synthetic=synthetic_input,
    output:
        model=RESULTS / "classify" / "{strategy}" / RUN / "model.pt",
        history=RESULTS / "classify" / "{strategy}" / RUN / "history.tsv",
        predictions=RESULTS / "classify" / "{strategy}" / RUN / "predictions.tsv",
        metrics=RESULTS / "classify" / "{strategy}" / RUN / "metrics.json",
    params:
        classifier=config["classifier"],
        strategies=strategy_settings,
    log:
        f"logs/train_classifier/{{strategy}}/{RUN}.log",
    benchmark:
        RESULTS / "benchmarks" / "train_classifier" / "{strategy}" / f"{RUN}.tsv"
    threads: res("classifier", "threads", 1)
    resources:
        gpu=res("classifier", "gpu", 0),
        mem_mb=res("classifier", "mem_mb", 4000),
        runtime=res("classifier", "runtime", 60),
    script:
        "../scripts/train_classifier.py"


rule gan_classifier_metrics:
    """GAN metrics that need a classifier trained on real data: the (repeat, fold)'s judge (the baseline when real-only)."""
    input:
        model=judge_model,
        synthetic=RESULTS / "gan" / RUN / "synthetic.npz",
        volumes=RESULTS / "dataset" / "volumes.npy",
        index=RESULTS / "dataset" / "index.tsv",
        splits=RESULTS / "splits.json",
    output:
        metrics=RESULTS / "gan" / RUN / "classifier_metrics.json",
    log:
        f"logs/gan_classifier_metrics/{RUN}.log",
    benchmark:
        RESULTS / "benchmarks" / "gan_classifier_metrics" / f"{RUN}.tsv"
    threads: 1
    resources:
        mem_mb=res("classifier", "mem_mb", 4000),
        runtime=30,
    script:
        "../scripts/gan_classifier_metrics.py"
