# The alpha-GAN: one per outer fold, trained on that fold's training subjects only.
# Checkpoints live outside the declared outputs, so a failed or killed job
# keeps them and the next run resumes.


rule train_gan:
    input:
        volumes=RESULTS / "dataset" / "volumes.npy",
        index=RESULTS / "dataset" / "index.tsv",
        splits=RESULTS / "splits.json",
        judge=judge_model,
    output:
        generator=RESULTS / "gan" / "fold{fold}" / "generator.pt",
        losses=RESULTS / "gan" / "fold{fold}" / "losses.tsv",
        samples=report(
            RESULTS / "gan" / "fold{fold}" / "samples.png",
            caption="../report/gan_samples.rst",
            category="GAN",
            subcategory="Samples",
            labels={"fold": "{fold}"},
        ),
        synthetic=RESULTS / "gan" / "fold{fold}" / "synthetic.npz",
        nifti=directory(RESULTS / "gan" / "fold{fold}" / "synthetic"),
        metrics=RESULTS / "gan" / "fold{fold}" / "metrics.json",
    params:
        gan=config["gan"],
        classes=CLASSES,
        image_size=config["preprocess"]["image_size"],
        strategies=config["strategies"],
        checkpoint_dir=gan_checkpoint_dir,
    log:
        "logs/train_gan/fold{fold}.log",
    benchmark:
        RESULTS / "benchmarks/train_gan/fold{fold}.tsv"
    threads: res("gan", "threads", 1)
    resources:
        gpu=res("gan", "gpu", 0),
        mem_mb=res("gan", "mem_mb", 4000),
        runtime=res("gan", "runtime", 60),
    script:
        "../scripts/train_gan.py"
