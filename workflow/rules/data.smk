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
    log:
        "logs/data/{dataset}.log",
    shell:
        "kglnet make-synthetic --out-dir {params.out_dir} --config {params.settings:q} --no-progress > {log} 2>&1"
