"""Rule figures: strategy comparison, confusion matrices and learning curves."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from brainaug.results import figures
from brainaug.workflow_step import workflow_step

with workflow_step(snakemake) as log:  # noqa: F821 - injected by Snakemake
    out = snakemake.output
    classes = snakemake.params.classes
    figures.plot_strategy_comparison(pd.read_csv(snakemake.input.table), out.comparison, note=snakemake.params.control)

    # The declared runs only: a fold folder left from an earlier config is not one of them.
    repeated = len({r for _, r, _ in snakemake.params.runs}) > 1

    runs = {}
    for (name, r, k), metrics, history in zip(snakemake.params.runs, snakemake.input.metrics, snakemake.input.histories):
        key = (r, k) if repeated else k  # a (repeat, fold) key gets its repeat's colour (figures.run_styles)
        runs.setdefault(name, []).append((key, metrics, history))
    confusions = {
        name: sum(np.asarray(json.loads(Path(m).read_text())["test"]["confusion_matrix"]) for _, m, _ in folds)
        for name, folds in runs.items()
    }
    histories = {name: {key: pd.read_csv(h, sep="\t") for key, _, h in folds} for name, folds in runs.items()}
    figures.plot_confusion_matrices(confusions, classes, out.confusion)
    figures.plot_learning_curves(histories, out.curves)
    log.info("figures written")
