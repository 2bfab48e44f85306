# Training: one job per (dataset, model); resumes from checkpoints/<dataset>/<model>/last.pt.


rule train:
    input:
        train="data/{dataset}/train.h5",
        val="data/{dataset}/val.h5",
    output:
        best="checkpoints/{dataset}/{model}/best.pt",
        history="results/training/{dataset}/{model}.json",
    params:
        out_dir=lambda w: f"checkpoints/{w.dataset}/{w.model}",
        # Passed whole, so Snakemake's params trigger reruns training when any setting changes.
        settings=lambda w: json.dumps(train_settings(w.dataset, w.model), sort_keys=True),
    threads: 64  # capped at --cores; torch uses them all
    resources:
        gpu=1,
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/train/{dataset}/{model}.log",
    shell:
        "kglnet train --train {input.train} --val {input.val} --out-dir {params.out_dir}"
        " --config {params.settings:q} --threads {threads} --history-out {output.history}"
        " --no-progress > {log} 2>&1"
