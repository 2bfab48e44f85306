# Evaluation: FPR95 of every trained model and every hand-crafted baseline on every test set,
# then one table and one set of figures per dataset.


rule evaluate_model:
    """The validation-selected checkpoint of one run on every test set (the honest protocol)."""
    input:
        checkpoint="checkpoints/{dataset}/{model}/seed{seed}/best.pt",
        pairs=lambda w: test_files(w.dataset),
    output:
        metrics="results/metrics/{dataset}/{model}/seed{seed}.json",
        roc="results/roc/{dataset}/{model}/seed{seed}.json",
        roc_descriptor="results/roc/{dataset}/{model}/seed{seed}.descriptor.json",
    wildcard_constraints:
        model=one_of(list(config["models"])),
        seed=r"\d+",
    params:
        names=lambda w: " ".join(test_sets(w.dataset)),
        label=lambda w: model_label(w.model),
        batch_size=config["evaluation"].get("batch_size", 512),
        device=config["evaluation"].get("device", "auto"),
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/evaluate/{dataset}/{model}/seed{seed}.log",
    shell:
        "kglnet evaluate --checkpoint {input.checkpoint} --pairs {input.pairs} --names {params.names}"
        " --dataset {wildcards.dataset} --model {wildcards.model} --label {params.label:q}"
        " --batch-size {params.batch_size} --device {params.device}"
        " --metrics-out {output.metrics} --roc-out {output.roc}"
        " --roc-descriptor-out {output.roc_descriptor} > {log} 2>&1"


rule qualitative:
    """The paper's qualitative figure per test set, for the dataset's first model and seed."""
    input:
        checkpoint=lambda w: f"checkpoints/{run_dir(w.dataset, models_of(w.dataset)[0], seeds_of(models_of(w.dataset)[0])[0])}/best.pt",
        pairs=lambda w: test_files(w.dataset),
    output:
        report(
            directory("results/qualitative/{dataset}"),
            patterns=["matches_{test_set}.png"],
            caption="../report/qualitative.rst",
            category="Qualitative",
            subcategory="{dataset}",
        ),
    params:
        names=lambda w: " ".join(test_sets(w.dataset)),
        batch_size=config["evaluation"].get("batch_size", 512),
        device=config["evaluation"].get("device", "auto"),
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/qualitative/{dataset}.log",
    shell:
        "kglnet evaluate --checkpoint {input.checkpoint} --pairs {input.pairs} --names {params.names}"
        " --batch-size {params.batch_size} --device {params.device} --grid-dir {output} > {log} 2>&1"


rule evaluate_baseline:
    input:
        pairs=lambda w: test_files(w.dataset),
    output:
        metrics="results/metrics/{dataset}/{method}.json",
        roc="results/roc/{dataset}/{method}.json",
    wildcard_constraints:
        method="ncc|sift|lghd|gisift",
    params:
        names=lambda w: " ".join(test_sets(w.dataset)),
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/evaluate/{dataset}/{method}.log",
    shell:
        "kglnet baseline --method {wildcards.method} --pairs {input.pairs} --names {params.names}"
        " --dataset {wildcards.dataset} --metrics-out {output.metrics} --roc-out {output.roc} > {log} 2>&1"


rule report:
    """Tables (both protocols, seeds, the paper's numbers), the summary DVC tracks as metrics, and
    the figures: ROC per test set, training curves per run, FPR95 against parameter count, and
    FPR95 per seed where a method has several."""
    input:
        metrics=lambda w: all_metrics(w.dataset),
        roc=lambda w: roc_files(w.dataset),
        history=lambda w: run_histories(w.dataset),
    output:
        md="results/tables/{dataset}.md",
        csv="results/tables/{dataset}.csv",
        summary="results/metrics/{dataset}/summary.json",
        figures=report(
            directory("results/figures/{dataset}"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
    params:
        paper_table=lambda w: (
            f"--paper-table {dataset_cfg(w.dataset)['paper_table']}" if "paper_table" in dataset_cfg(w.dataset) else ""
        ),
        paper_methods=lambda w: " ".join(f"{m}={n!r}" for m, n in paper_methods().items()),
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/report/{dataset}.log",
    shell:
        "kglnet report --dataset {wildcards.dataset} --metrics {input.metrics} --roc {input.roc}"
        " --history {input.history} --table-md {output.md} --table-csv {output.csv}"
        " --summary-out {output.summary} --figures-dir {output.figures} {params.paper_table}"
        " --paper-method {params.paper_methods} > {log} 2>&1"
