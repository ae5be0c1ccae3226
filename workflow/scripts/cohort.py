"""Rule cohort: read the manifest or BIDS folder into the validated cohort table.

With ``controls.shuffle_labels`` the diagnoses are permuted across subjects here,
before the folds are made, so no later stage ever sees a true label.
"""

from brainaug.cohort import load_cohort, validate_images, write_cohort
from brainaug.controls import ControlSettings, shuffle_subject_labels
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    data = dict(snakemake.params.data)
    if "bids" in snakemake.input.keys():
        data["source"], data["bids_dir"] = "bids", snakemake.input.bids
    cohort = load_cohort(data, n_folds=snakemake.params.n_folds)
    validate_images(cohort, assume_orientation=snakemake.params.assume_orientation)
    controls = ControlSettings.from_config(snakemake.params.controls)
    if controls.shuffle_labels:
        cohort = shuffle_subject_labels(cohort, controls.seed)
        log.warning(
            "CONTROL RUN: diagnoses shuffled across subjects (controls.shuffle_labels, seed %d); "
            "every later stage sees only the shuffled labels",
            controls.seed,
        )
    write_cohort(cohort, snakemake.output.table)
    counts = cohort.groupby("diagnosis")["subject_id"].nunique().to_dict()
    log.info("%d scans of %d subjects; subjects per class: %s", len(cohort), cohort["subject_id"].nunique(), counts)
