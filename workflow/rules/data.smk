# Data: every dataset ends as HDF5 pair files data/<dataset>/{train,val,<test sets>}.h5.


rule make_synthetic:
    """Built-in synthetic cross-spectral data (no network): train, val and test pair files."""
    output:
        train="data/{dataset}/train.h5",
        val="data/{dataset}/val.h5",
        test="data/{dataset}/test.h5",
        summary="data/{dataset}/summary.json",
    params:
        out_dir=lambda w: f"data/{w.dataset}",
        settings=lambda w: json.dumps(dataset_cfg(w.dataset).get("synthetic", {}), sort_keys=True),
    conda:
        "../envs/kglnet.yaml"
    wildcard_constraints:
        dataset=one_of(SYNTHETIC),
    log:
        "logs/data/{dataset}.log",
    shell:
        "kglnet make-synthetic --out-dir {params.out_dir} --config {params.settings:q} --no-progress > {log} 2>&1"


rule fetch_source:
    """Real imagery: copied from the mirror (config `mirror` or $KGLNET_MIRROR) or downloaded from
    its pinned repository; every file verified against the committed sha256 manifest."""
    output:
        "data/raw/{source}/.kglnet-verified.json",
    wildcard_constraints:
        source="visnir-registration|roadscene|3mos",
    params:
        mirror=f"--mirror {config['mirror']}" if config.get("mirror") else "",
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/fetch/{source}.log",
    shell:
        "kglnet fetch --source {wildcards.source} --dest data/raw/{wildcards.source} {params.mirror}"
        " --no-progress > {log} 2>&1"


# One rule per real mini dataset: each has its own set of test files (8 scenes for visnir).
for _dataset in MINI:
    _source = MINI_DATASETS[_dataset].source

    rule:
        name:
            f"make_mini_{_dataset}"
        input:
            f"data/raw/{_source}/.kglnet-verified.json",
        output:
            [f"data/{_dataset}/{split}.h5" for split in ("train", "val")]
            + [f"data/{_dataset}/{t}.h5" for t in test_sets(_dataset)]
            + [f"data/{_dataset}/summary.json"],
        params:
            dataset=_dataset,
            source_dir=lambda w, input: os.path.dirname(input[0]),
            out_dir=lambda w, output: os.path.dirname(output[0]),
            settings=json.dumps(dataset_cfg(_dataset).get("mini", {}), sort_keys=True),
        conda:
            "../envs/kglnet.yaml"
        log:
            f"logs/data/{_dataset}.log",
        shell:
            "kglnet make-mini --dataset {params.dataset} --source-dir {params.source_dir}"
            " --out-dir {params.out_dir} --config {params.settings:q} --no-progress > {log} 2>&1"
