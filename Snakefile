# brainaug: does GAN-synthesized brain MRI help a dementia classifier?
# Thin entry point: the rules live in workflow/rules, the science in src/brainaug.
import os

from snakemake.utils import min_version

min_version("9.0")


# Found next to this file, so `snakemake -d elsewhere` works too.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/gan.smk"
include: "workflow/rules/classify.smk"
include: "workflow/rules/results.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
