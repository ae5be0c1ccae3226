# The alpha-GAN: one per (repeat, outer fold), trained on that fold's training subjects only.
# Checkpoints live outside the declared outputs, so a failed or killed job
# keeps them and the next run resumes.


rule train_gan:
    input:
        volumes=RESULTS / "dataset" / "volumes.npy",
        index=RESULTS / "dataset" / "index.tsv",
        splits=RESULTS / "splits.json",
        judge=judge_model,
    output:
        generator=RESULTS / "gan" / RUN / "generator.pt",
        losses=RESULTS / "gan" / RUN / "losses.tsv",
        samples=report(
            RESULTS / "gan" / RUN / "samples.png",
            caption="../report/gan_samples.rst",
            category="GAN",
            subcategory="Samples",
            labels={"repeat": "{repeat}", "fold": "{fold}"},
        ),
        synthetic=RESULTS / "gan" / RUN / "synthetic.npz",
        nifti=directory(RESULTS / "gan" / RUN / "synthetic"),
        metrics=RESULTS / "gan" / RUN / "metrics.json",
    params:
        # gan.seed is the base: repeat r trains with brainaug.splits.repeat_seed(gan.seed, r).
        gan=config["gan"],
        classes=CLASSES,
        image_size=config["preprocess"]["image_size"],
        strategies=config["strategies"],
        checkpoint_dir=gan_checkpoint_dir,
    log:
        f"logs/train_gan/{RUN}.log",
    benchmark:
        RESULTS / "benchmarks" / "train_gan" / f"{RUN}.tsv"
    threads: res("gan", "threads", 1)
    resources:
        gpu=res("gan", "gpu", 0),
        mem_mb=res("gan", "mem_mb", 4000),
        runtime=res("gan", "runtime", 60),
    script:
        "../scripts/train_gan.py"
