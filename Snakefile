# kglnet workflow: data -> pair files -> training per dataset and model -> evaluation -> tables.
# Default config: params.yaml (the built-in synthetic data). Others: --configfile config/<name>.yaml.
# Rules stay thin: each calls one `kglnet` subcommand.


# params.yaml is the default only: a config given with --configfile replaces it instead of being
# merged into it, so `--configfile config/mini.yaml` does not also run the built-in dataset.
if not config:

    configfile: "params.yaml"


# `snakemake --report report.html`: the figures flagged in the rules, with this description.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# Before the rules, so that it is applied to them as they are defined, together with their own
# constraints (applied after them, it drops those under a remote default storage such as S3).
wildcard_constraints:
    dataset="|".join(DATASETS),


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/registration.smk"


rule all:
    """Default target: every dataset end to end, tables and figures included."""
    input:
        [report_outputs(d) for d in DATASETS],
        registration_outputs(),


rule data_all:
    """All pair files (the DVC 'data' stage)."""
    input:
        [split_files(d) for d in DATASETS],


rule train_all:
    """All trained checkpoints (the DVC 'train' stage)."""
    input:
        [f"checkpoints/{run_dir(d, m, s)}/best.pt" for d in DATASETS for m, s in runs(d)],


rule evaluate_all:
    """All metrics, tables and figures (the DVC 'evaluate' stage)."""
    input:
        [all_metrics(d) + report_outputs(d) for d in DATASETS],
