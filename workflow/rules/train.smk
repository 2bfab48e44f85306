# Training: one job per (dataset, model, seed); resumes from checkpoints/<run>/last.pt.


rule train:
    input:
        train="data/{dataset}/train.h5",
        val="data/{dataset}/val.h5",
        # The test sets are only scored after each epoch (paper protocol), never trained on.
        monitor=lambda w: test_files(w.dataset) if paper_protocol() else [],
        # a second stage (`init_from`) starts from the first stage's best.pt
        init=lambda w: init_checkpoint(w.dataset, w.model, w.seed) or [],
    output:
        best="checkpoints/{dataset}/{model}/seed{seed}/best.pt",
        history="results/training/{dataset}/{model}/seed{seed}.json",
    params:
        # the run folder of the declared best.pt (under a storage provider: its local copy)
        out_dir=lambda w, output: os.path.dirname(output.best),
        # Passed whole, so Snakemake's params trigger reruns training when any setting changes.
        settings=lambda w: json.dumps(train_settings(w.dataset, w.model, w.seed), sort_keys=True),
        monitor=lambda w, input: (
            "--monitor " + " ".join(f"{n}={f}" for n, f in zip(test_sets(w.dataset), input.monitor))
            if input.monitor else ""
        ),
    wildcard_constraints:
        seed=r"\d+",
    threads: 64  # capped at --cores; torch uses them all
    resources:
        gpu=1,
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/train/{dataset}/{model}/seed{seed}.log",
    shell:
        "kglnet train --train {input.train} --val {input.val} --out-dir {params.out_dir}"
        " --config {params.settings:q} {params.monitor} --threads {threads}"
        " --history-out {output.history} --no-progress > {log} 2>&1"
