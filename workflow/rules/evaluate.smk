# Evaluation: FPR95 of every trained model and every hand-crafted baseline on every test set,
# then one table and one set of figures per dataset.


rule evaluate_model:
    input:
        checkpoint="checkpoints/{dataset}/{model}/best.pt",
        pairs=lambda w: test_files(w.dataset),
    output:
        metrics="results/metrics/{dataset}/{model}.json",
        roc="results/roc/{dataset}/{model}.json",
        roc_descriptor="results/roc/{dataset}/{model}.descriptor.json",
    wildcard_constraints:
        model="|".join(config["models"]) or "NONE",
    params:
        names=lambda w: " ".join(test_sets(w.dataset)),
        label=lambda w: model_label(w.model),
        batch_size=config["evaluation"].get("batch_size", 512),
        device=config["evaluation"].get("device", "auto"),
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/evaluate/{dataset}/{model}.log",
    shell:
        "kglnet evaluate --checkpoint {input.checkpoint} --pairs {input.pairs} --names {params.names}"
        " --dataset {wildcards.dataset} --model {wildcards.model} --label {params.label:q}"
        " --batch-size {params.batch_size} --device {params.device}"
        " --metrics-out {output.metrics} --roc-out {output.roc}"
        " --roc-descriptor-out {output.roc_descriptor} > {log} 2>&1"


rule evaluate_baseline:
    input:
        pairs=lambda w: test_files(w.dataset),
    output:
        metrics="results/metrics/{dataset}/{method}.json",
        roc="results/roc/{dataset}/{method}.json",
    wildcard_constraints:
        method="ncc|sift",
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
    input:
        metrics=lambda w: all_metrics(w.dataset),
        roc=lambda w: roc_files(w.dataset),
        history=lambda w: [f"results/training/{w.dataset}/{m}.json" for m in models_of(w.dataset)],
    output:
        md="results/tables/{dataset}.md",
        csv="results/tables/{dataset}.csv",
        figures=directory("results/figures/{dataset}"),
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/report/{dataset}.log",
    shell:
        "kglnet report --dataset {wildcards.dataset} --metrics {input.metrics} --roc {input.roc}"
        " --history {input.history} --table-md {output.md} --table-csv {output.csv}"
        " --figures-dir {output.figures} > {log} 2>&1"
