# Registration benchmark (issue 7): the 160 warped VIS-NIR pairs of the registration dataset,
# registered with a trained checkpoint and with SIFT on the same keypoints. Only with a
# `registration:` entry in the config (config/mini.yaml has one).

if config.get("registration"):
    _REG = config["registration"]

    rule registration_benchmark:
        """Corner error against each pair's ground-truth affine; success at 5 / 10 px."""
        input:
            source="data/raw/visnir-registration",
            checkpoint=f"checkpoints/{run_dir(_REG['dataset'], _REG['model'], _REG.get('seed', 0))}/best.pt",
        output:
            summary="results/registration/summary.json",
            table="results/registration/table.md",
            pairs="results/registration/pairs.json",
        params:
            out_dir=lambda w, output: os.path.dirname(output.summary),
            methods=" ".join(_REG.get("methods", ["kglnet", "sift"])),
            settings=(
                f"--keypoints {_REG.get('keypoints', 'sift')} --max-keypoints {_REG.get('max_keypoints', 500)}"
                f" --model-transform {_REG.get('model_transform', 'affine')} --ransac-px {_REG.get('ransac_px', 3.0)}"
                + (f" --verify-threshold {_REG['verify_threshold']}" if _REG.get("verify_threshold") is not None else "")
                + (f" --per-category {_REG['per_category']}" if _REG.get("per_category") else "")
            ),
            device=config["evaluation"].get("device", "auto"),
        threads: 64  # capped at --cores
        conda:
            "../envs/kglnet.yaml"
        log:
            "logs/registration.log",
        shell:
            "kglnet registration-benchmark --source-dir {input.source} --checkpoint {input.checkpoint}"
            " --out-dir {params.out_dir} --methods {params.methods} {params.settings}"
            " --device {params.device} --no-progress > {log} 2>&1"


def registration_outputs():
    return ["results/registration/summary.json", "results/registration/table.md"] if config.get("registration") else []
