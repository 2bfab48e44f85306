# Data: every dataset ends as HDF5 pair files data/<dataset>/{train,val,<test sets>}.h5.


rule make_synthetic:
    """Built-in synthetic cross-spectral data (no network): train, val and test pair files."""
    output:
        train="data/{dataset}/train.h5",
        val="data/{dataset}/val.h5",
        test="data/{dataset}/test.h5",
        summary="data/{dataset}/summary.json",
    params:
        # from {output}, not the wildcards: under a storage provider (the kubernetes profile) the
        # outputs live under .snakemake/storage/, and the job must write there
        out_dir=lambda w, output: os.path.dirname(output.train),
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
    its pinned repository; every file verified against the committed sha256 manifest. The whole
    folder is the output, so its images travel with it to remote storage; its readers re-check
    every file against the manifest before use."""
    output:
        directory("data/raw/{source}"),
    wildcard_constraints:
        source="visnir-registration|roadscene|3mos",
    params:
        mirror=f"--mirror {config['mirror']}" if config.get("mirror") else "",
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/fetch/{source}.log",
    shell:
        "kglnet fetch --source {wildcards.source} --dest {output} {params.mirror} --no-progress > {log} 2>&1"


# One rule per real mini dataset: each has its own set of test files (8 scenes for visnir).
for _dataset in MINI:
    _source = MINI_DATASETS[_dataset].source

    rule:
        name:
            f"make_mini_{_dataset}"
        input:
            f"data/raw/{_source}",
        output:
            [f"data/{_dataset}/{split}.h5" for split in ("train", "val")]
            + [f"data/{_dataset}/{t}.h5" for t in test_sets(_dataset)]
            + [f"data/{_dataset}/summary.json"],
        params:
            dataset=_dataset,
            out_dir=lambda w, output: os.path.dirname(output[0]),
            settings=json.dumps(dataset_cfg(_dataset).get("mini", {}), sort_keys=True),
        conda:
            "../envs/kglnet.yaml"
        log:
            f"logs/data/{_dataset}.log",
        shell:
            "kglnet make-mini --dataset {params.dataset} --source-dir {input}"
            " --out-dir {params.out_dir} --config {params.settings:q} --no-progress > {log} 2>&1"


rule convert_bundle_train:
    """KGL-Net bundle: the training set -> train.h5, with val.h5 carved from it by linked point ids
    (the bundle has no validation set)."""
    input:
        lambda w: bundle_inputs(w.dataset, "train"),
    output:
        train="data/{dataset}/train.h5",
        val="data/{dataset}/val.h5",
    wildcard_constraints:
        dataset=one_of(BUNDLE),
    params:
        set_dir=lambda w, input: os.path.dirname(input[0]),
        val_fraction=lambda w: dataset_cfg(w.dataset)["bundle"].get("val_fraction", 0.1),
        seed=lambda w: dataset_cfg(w.dataset)["bundle"].get("seed", 0),
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/data/{dataset}/train.log",
    shell:
        "kglnet convert --format kglnet-bundle --input {params.set_dir:q} --split train"
        " --out {output.train} --val-out {output.val} --val-fraction {params.val_fraction}"
        " --seed {params.seed} > {log} 2>&1"


rule convert_bundle_test:
    """KGL-Net bundle: one test set -> data/<dataset>/<test set>.h5 (scene = the set's folder)."""
    input:
        lambda w: bundle_inputs(w.dataset, w.test_set),
    output:
        "data/{dataset}/{test_set}.h5",
    wildcard_constraints:
        dataset=one_of(BUNDLE),
        test_set=one_of(sorted({t for d in BUNDLE for t in test_sets(d)})),
    params:
        set_dir=lambda w, input: os.path.dirname(input[0]),
        scene=lambda w: bundle_set(w.dataset, w.test_set),
    conda:
        "../envs/kglnet.yaml"
    log:
        "logs/data/{dataset}/{test_set}.log",
    shell:
        "kglnet convert --format kglnet-bundle --input {params.set_dir:q} --split test"
        " --scene {params.scene} --out {output} > {log} 2>&1"
