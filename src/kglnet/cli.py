"""The ``kglnet`` command line. Every Snakemake rule calls one of these subcommands.

  kglnet models                         registered models and their parameter counts
  kglnet make-synthetic                 built-in synthetic dataset -> HDF5 pair files
  kglnet fetch                          real imagery from a mirror folder or its pinned repository, verified
  kglnet make-mini                      a real mini dataset (visnir, vislwir, os, *_patchsplit) -> HDF5 pair files
  kglnet convert                        the paper's published dataset forms -> HDF5 pair files
  kglnet train                          train a model on a pair file, select on another
  kglnet evaluate                       FPR95 of a checkpoint on any pair files (JSON per file)
  kglnet baseline                       FPR95 of a hand-crafted method (NCC, SIFT) on pair files
  kglnet report                         tables and figures from metrics, ROC and training records
  kglnet match                          match a VIS image against an NIR / thermal / SAR image with a checkpoint
  kglnet register                       match, then warp the VIS image into the other image's frame

User errors (bad files, bad settings) exit with status 2 and one line naming the file and the problem.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger("kglnet")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _monitor_item(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=FILE.h5, got {text!r}")
    return name.strip(), Path(path.strip())


def _monitor_dict(items: Sequence[tuple[str, Path]] | None) -> dict[str, Path] | None:
    if not items:
        return None
    out: dict[str, Path] = {}
    for name, path in items:
        if name in out:
            raise ValueError(f"--monitor: test-set name {name!r} given twice")
        out[name] = path
    return out


def cmd_models(args: argparse.Namespace) -> int:
    import torch

    from .models import count_parameters, create_model, list_models

    # Built on the meta device: parameter shapes without memory or initialisation (SPIMNet and
    # MFD-Net have 130-150 M parameters).
    for name in list_models():
        with torch.device("meta"):
            model = create_model(name)
        objective = getattr(model, "objective", "kglnet")
        print(f"{name}\t{count_parameters(model)}\t{getattr(model, 'input_size', 64)}\t{objective}")
    return 0


def cmd_make_synthetic(args: argparse.Namespace) -> int:
    from .data.synthetic import SyntheticConfig, build_synthetic_dataset

    cfg = SyntheticConfig.from_dict(args.config)
    summary = build_synthetic_dataset(args.out_dir, cfg, progress=not args.no_progress)
    print(json.dumps(summary.get("splits", summary), sort_keys=True))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from .data.sources import fetch_source

    summary = fetch_source(args.source, args.dest, mirror=args.mirror, allow_download=not args.no_download,
                           progress=not args.no_progress)
    print(json.dumps(summary, sort_keys=True))
    return 0


def cmd_make_mini(args: argparse.Namespace) -> int:
    from .data.mini import MINI_DATASETS, MiniConfig, build_mini
    from .data.sources import verify_source

    if args.dataset not in MINI_DATASETS:
        raise ValueError(f"unknown mini dataset {args.dataset!r}; allowed: {', '.join(MINI_DATASETS)}")
    # Never cut patches from unverified files: re-check the source against its manifest first.
    verify_source(MINI_DATASETS[args.dataset].source, args.source_dir)
    summary = build_mini(args.dataset, args.source_dir, args.out_dir, MiniConfig.from_dict(args.config),
                         progress=not args.no_progress)
    print(json.dumps({k: v for k, v in summary.items() if k == "splits"}, sort_keys=True))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .data import converters

    if args.format == "kglnet-bundle":
        summary = converters.convert_kglnet_bundle(
            args.input, args.out, split=args.split, scene=args.scene,
            val_out=args.val_out, val_fraction=args.val_fraction, seed=args.seed,
        )
    elif args.val_out is not None:
        raise ValueError("--val-out: only --format kglnet-bundle carves a validation split")
    elif args.format == "aguilera-csv":
        summary = converters.convert_aguilera_csv(args.input, args.root, args.out, scene=args.scene, split=args.split)
    elif args.format == "vislwir-list":
        summary = converters.convert_vislwir_list(args.input, args.root, args.out, split=args.split)
    else:
        summary = converters.convert_os_list(args.input, args.root, args.out, split=args.split)
    print(json.dumps(summary, sort_keys=True))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, stop_on_signals, train
    from .utils.io import atomic_path

    settings = dict(args.config)
    if args.threads is not None:
        settings["threads"] = args.threads
    if args.device is not None:
        settings["device"] = args.device
    if args.checkpoint_minutes is not None:
        settings["checkpoint_minutes"] = args.checkpoint_minutes
    if args.init_from is not None:
        settings["init_from"] = str(args.init_from)
    cfg = TrainConfig.from_dict(settings)
    with stop_on_signals() as stop:
        summary = train(args.train, args.val, args.out_dir, cfg, resume=args.resume, progress=not args.no_progress,
                        monitor=_monitor_dict(args.monitor), stop=stop)
    if args.history_out:
        history = Path(args.out_dir) / "history.json"
        with atomic_path(args.history_out) as tmp:
            tmp.write_bytes(history.read_bytes())
    print(json.dumps(summary["best"], sort_keys=True))
    return 0


def _test_set_names(files: Sequence[str], names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [Path(f).stem for f in files]
    if len(names) != len(files):
        raise ValueError(f"--names has {len(names)} entries but --pairs has {len(files)} files")
    return list(names)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.runner import evaluate_checkpoint, write_outputs

    names = _test_set_names(args.pairs, args.names)
    results, roc = evaluate_checkpoint(args.checkpoint, args.pairs, names, batch_size=args.batch_size,
                                       device=args.device, grid_dir=args.grid_dir)
    for name in names:
        print(json.dumps(results[name], sort_keys=True))
    if args.metrics_out:
        write_outputs(results, roc, metrics_out=args.metrics_out, roc_out=args.roc_out,
                      roc_descriptor_out=args.roc_descriptor_out, dataset=args.dataset,
                      model=args.model or "kglnet", label=args.label, selection=args.selection,
                      checkpoint=args.checkpoint)
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from .evaluation.runner import evaluate_handcrafted, write_outputs

    names = _test_set_names(args.pairs, args.names)
    results, roc = evaluate_handcrafted(args.method, args.pairs, names)
    for name in names:
        print(json.dumps(results[name], sort_keys=True))
    if args.metrics_out:
        write_outputs(results, roc, metrics_out=args.metrics_out, roc_out=args.roc_out, dataset=args.dataset,
                      model=args.method, label=args.label or args.method.upper(), selection="none (hand-crafted)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .evaluation.runner import make_report

    make_report(args.dataset, metrics=args.metrics, roc=args.roc, histories=args.history,
                table_md=args.table_md, table_csv=args.table_csv, figures_dir=args.figures_dir,
                summary_out=args.summary_out, paper_table=args.paper_table,
                paper_methods=dict(args.paper_method))
    return 0


def _schedule_item(text: str) -> tuple[str, list[int]]:
    name, sep, rest = text.partition("=")
    pairs, sep2, epochs = rest.partition(":")
    if not (sep and sep2 and name and pairs.isdigit() and epochs.isdigit()):
        raise argparse.ArgumentTypeError(f"expected DATASET=PAIRS:EPOCHS (e.g. visnir=100000:100), got {text!r}")
    return name, [int(pairs), int(epochs)]


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, run_benchmark
    from .utils.io import atomic_write_json

    cfg = BenchConfig(device=args.device, model=args.model, batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
                      eval_pairs=args.eval_pairs, eval_batch_size=args.eval_batch_size, precision=args.precision,
                      channels_last=not args.no_channels_last, compile=args.compile,
                      fused_optimizer=args.fused_optimizer, one_pass_shared_stack=args.one_pass_shared_stack,
                      phases=args.phases, profile=args.profile, reference=not args.no_reference, fp32_project=not args.no_fp32, threads=args.threads,
                      schedule=dict(args.schedule))
    record = run_benchmark(cfg, progress=lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True))
    if args.out:
        atomic_write_json(args.out, record)
    keys = ("device", "train_pairs_per_s", "fp32_train_pairs_per_s", "reference_train_pairs_per_s",
            "train_speedup", "reference_train_pairs_per_s_spec_augment", "train_speedup_spec_augment",
            "eval_pairs_per_s", "reference_eval_pairs_per_s", "peak_memory_gb")
    print(json.dumps({k: record.get(k) for k in keys}, indent=1))
    return 0


# -- image matching and registration (kglnet.matching) -------------------------------------------

def _run_matching(args: argparse.Namespace, register: bool) -> int:
    from .matching import ImageMatcher, RegistrationError, read_image, write_outputs

    # Read (and check) both images before loading the model: a bad file fails fast.
    image0, image1 = read_image(args.image0), read_image(args.image1)
    matcher = ImageMatcher(args.checkpoint, device=args.device, keypoints=args.keypoints,
                           max_keypoints=args.max_keypoints, model_transform=args.model_transform,
                           ransac_px=args.ransac_px, min_inliers=args.min_inliers,
                           verify_threshold=args.verify_threshold,
                           batch_size=args.batch_size)
    result = matcher.match(image0, image1, names=(str(args.image0), str(args.image1)))
    summary = {"keypoints0": len(result.keypoints0), "keypoints1": len(result.keypoints1),
               "mutual": result.num_mutual, "matches": result.num_matches, "inliers": result.num_inliers,
               "transform": result.to_dict()["transform"], "out_dir": str(args.out_dir),
               "seconds": round(result.timings["total"], 3)}
    try:
        write_outputs(result, image0, image1, args.out_dir, register=register)
    except RegistrationError as exc:
        print(json.dumps(summary, sort_keys=True))
        print(f"kglnet {args.command}: error: {exc} (matches written to {Path(args.out_dir) / 'matches.json'})",
              file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True))
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    return _run_matching(args, register=False)


def cmd_register(args: argparse.Namespace) -> int:
    return _run_matching(args, register=True)


def _checked_number(text: str, cast, ok, what: str):
    """argparse type: ``cast(text)`` when ``ok(value)``, else an error saying ``what`` was expected."""
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _checked_number(text, int, lambda v: v >= 1, "a positive integer")


def _positive_float(text: str) -> float:
    return _checked_number(text, float, lambda v: 0 < v < float("inf"), "a positive number")


def _probability(text: str) -> float:
    return _checked_number(text, float, lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]")


def _add_matching_parsers(sub: argparse._SubParsersAction) -> None:
    """``kglnet match`` and ``kglnet register`` (same options; register writes three more files)."""
    helps = {
        "match": ("match a VIS image (--image0) against an NIR / thermal / SAR image (--image1) with a checkpoint; "
                  "writes OUT_DIR/matches.json and OUT_DIR/matches.png"),
        "register": ("match, then estimate the VIS -> other transform and warp the VIS image into the other "
                     "image's frame; writes matches.json, matches.png, transform.json, warped.png, overlay.png "
                     "(exit status 1 when no transform is found)"),
    }
    for name, func in (("match", cmd_match), ("register", cmd_register)):
        p = sub.add_parser(name, help=helps[name], description=helps[name])
        p.add_argument("--checkpoint", required=True, type=Path, help="trained checkpoint (KGL-Net or a descriptor model)")
        p.add_argument("--image0", required=True, type=Path, help="the visible image (any size, 8/16-bit, grey or colour)")
        p.add_argument("--image1", required=True, type=Path, help="the NIR, thermal or SAR image")
        p.add_argument("--out-dir", required=True, type=Path)
        p.add_argument("--keypoints", choices=["sift", "fast", "grid"], default="sift",
                       help="keypoints on each image (default: sift)")
        p.add_argument("--max-keypoints", type=_positive_int, default=1000, help="per image (default: 1000)")
        p.add_argument("--model-transform", choices=["affine", "homography"], default="affine",
                       help="transform fitted by RANSAC (default: affine)")
        p.add_argument("--verify-threshold", type=_probability, default=None, metavar="P",
                       help="keep only matches whose metric-branch match probability is >= P (KGL-Net; "
                            "default: no verification)")
        p.add_argument("--ransac-px", type=_positive_float, default=3.0, help="RANSAC threshold in pixels (default: 3)")
        p.add_argument("--min-inliers", type=_positive_int, default=None, metavar="N",
                       help="fewest RANSAC inliers for a transform to count (default: 5 affine, 6 homography)")
        p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
        p.add_argument("--batch-size", type=_positive_int, default=256, help="patches per forward pass")
        p.set_defaults(func=func)


# The registration dataset's warped categories (kglnet.evaluation.registration), spelled out here
# so that building the parser imports nothing heavy.
REGISTRATION_CATEGORY_NAMES = ("field", "forest", "indoor", "mountain", "oldbuilding", "street", "urban", "water")


def cmd_export(args: argparse.Namespace) -> int:
    from .export import main_args

    return main_args(args.checkpoint, args.out_dir, args.format)


def cmd_regression_check(args: argparse.Namespace) -> int:
    from .regression import regression_check

    return regression_check(args.root, config=args.config, baseline=args.baseline, refresh=args.refresh,
                            run=not args.no_run, tolerance=args.tolerance)


def cmd_registration_benchmark(args: argparse.Namespace) -> int:
    from .evaluation.registration import (benchmark_methods, matcher_register_fn, registration_pairs,
                                          results_records, results_table, run_registration, summarize)
    from .data.sources import verify_source
    from .utils.io import atomic_write_json, atomic_write_text

    # every image and ground-truth file against the committed manifest before any is used
    verify_source("visnir-registration", args.source_dir)
    pairs = registration_pairs(args.source_dir, categories=args.categories, per_category=args.per_category)
    settings = {"device": args.device, "keypoints": args.keypoints, "max_keypoints": args.max_keypoints,
                "model_transform": args.model_transform, "ransac_px": args.ransac_px,
                "verify_threshold": args.verify_threshold}
    matchers = benchmark_methods(args.checkpoint, args.methods, settings)
    summary, records = {}, {}
    for method, matcher in matchers.items():
        results = run_registration(pairs, matcher_register_fn(matcher), progress=not args.no_progress)
        summary[method] = summarize(results)
        summary[method]["settings"] = matcher.settings()
        records[method] = results_records(results)
        print(json.dumps({"method": method, **{k: v for k, v in summary[method].items()
                                               if k not in ("per_category", "settings")}}, sort_keys=True))
    device = str(next(iter(matchers.values())).device)
    out = Path(args.out_dir)
    atomic_write_json(out / "pairs.json", records)
    atomic_write_text(out / "table.md", results_table(summary, device))
    atomic_write_json(out / "summary.json", summary)  # last: its presence means the run is complete
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .regression import BASELINE as REGRESSION_BASELINE, CONFIG as REGRESSION_CONFIG  # no torch: cheap

    parser = argparse.ArgumentParser(prog="kglnet", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list registered models (name, parameter count, input size, objective; tab-separated)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("bench", help="training / evaluation throughput: the project's path against the "
                                     "reference's, in one run on one device (JSON with --out)")
    p.add_argument("--out", type=Path, help="JSON file to write (results/benchmarks/<device>.json)")
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="kglnet",
                   help="registered model (kglnet models), trained with its own objective and optimiser settings; "
                        "the reference path exists for kglnet only")
    p.add_argument("--batch-size", type=int, default=256, help="pairs per training batch (the paper's 256)")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per path")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    p.add_argument("--eval-pairs", type=int, default=8192)
    p.add_argument("--eval-batch-size", type=int, default=1024)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="bf16", help="project path precision")
    p.add_argument("--no-channels-last", action="store_true", help="project path in NCHW")
    p.add_argument("--compile", default="none", choices=["none", "default", "reduce-overhead", "max-autotune"],
                   help="torch.compile mode of the project path")
    p.add_argument("--fused-optimizer", action="store_true", help="project path: the optimiser's fused kernels")
    p.add_argument("--one-pass-shared-stack", action="store_true",
                   help="project path (KGL-Net and its variants): the shared descriptor layers run once on both "
                        "modalities' batches stacked, not once per modality")
    p.add_argument("--phases", action="store_true",
                   help="also time each phase of the project's step (draw, forward, backward, optimizer, "
                        "bookkeeping): train_phases_ms")
    p.add_argument("--profile", action="store_true",
                   help="also profile the project's steps kernel by kernel (on a GPU: the kernels it ran, "
                        "by category and the longest): train_profile")
    p.add_argument("--no-reference", action="store_true", help="skip the reference path")
    p.add_argument("--no-fp32", action="store_true", help="skip the project's exact fp32 path")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--schedule", type=_schedule_item, action="append", default=[],
                   help="DATASET=PAIRS:EPOCHS added to the full-schedule estimate (repeatable)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("make-synthetic", help="generate the built-in synthetic dataset")
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--config", type=_json_object, default={}, help="SyntheticConfig fields as a JSON object")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_make_synthetic, uses_torch=False)

    p = sub.add_parser("fetch", help="copy (from --mirror / $KGLNET_MIRROR) or download a source, verifying sha256")
    p.add_argument("--source", required=True, help="visnir-registration, roadscene or 3mos")
    p.add_argument("--dest", required=True, type=Path)
    p.add_argument("--mirror", help="folder laid out as <mirror>/<source>/<path> (default: $KGLNET_MIRROR)")
    p.add_argument("--no-download", action="store_true", help="never use the network")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_fetch, uses_torch=False)

    p = sub.add_parser("make-mini", help="cut a real mini dataset from a verified source folder")
    p.add_argument("--dataset", required=True,
                   help="visnir, vislwir, os, or vislwir_patchsplit / os_patchsplit (split by patch pair)")
    p.add_argument("--source-dir", required=True, type=Path)
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--config", type=_json_object, default={}, help="MiniConfig fields as a JSON object")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_make_mini, uses_torch=False)

    p = sub.add_parser("convert", help="convert a published dataset form into a pair file")
    p.add_argument("--format", required=True, choices=["kglnet-bundle", "aguilera-csv", "vislwir-list", "os-list"])
    p.add_argument("--input", required=True, type=Path, help="bundle set folder, CSV or list file")
    p.add_argument("--root", type=Path, help="image folder (aguilera-csv, vislwir-list, os-list)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--scene", help="scene name stored with the pairs")
    p.add_argument("--val-out", type=Path,
                   help="kglnet-bundle: also carve a validation file, grouped by linked point ids")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the groups held out (--val-out)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation carve (--val-out)")
    p.set_defaults(func=cmd_convert, uses_torch=False)

    p = sub.add_parser("train", help="train a model; resumes from OUT_DIR/last.pt when compatible")
    p.add_argument("--train", required=True, type=Path, help="pair file whose positives are the training pairs")
    p.add_argument("--val", required=True, type=Path, help="balanced pair file used to select the checkpoint")
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--config", type=_json_object, default={}, help="TrainConfig fields as a JSON object")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--checkpoint-minutes", type=float, metavar="MIN",
                   help="also write OUT_DIR/last.pt inside an epoch once MIN minutes have passed since the last "
                        "write, so an interrupted long epoch resumes where it stopped (default 10; 0: only at "
                        "epoch ends)")
    p.add_argument("--init-from", type=Path, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights (a best.pt or last.pt of the same model) instead of "
                        "the seed's initialisation: fine-tune a trained model on other pairs, or train a second "
                        "stage with other settings; optimiser and epochs start afresh")
    p.add_argument("--history-out", type=Path, help="also copy the per-epoch history JSON here")
    p.add_argument("--monitor", nargs="+", type=_monitor_item, metavar="NAME=FILE.h5",
                   help="test pair files evaluated after every epoch (never used for selection); their FPR95 "
                        "goes into the history as \"test\": {NAME: {fpr95_metric, fpr95_descriptor}} "
                        "(the paper protocol's test-selected curves, SPEC 5)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from OUT_DIR/last.pt (after its epoch, or inside one: --checkpoint-minutes) when "
                        "it was made with the same settings, data and model code (default); --no-resume starts from scratch")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="FPR95 of a checkpoint on pair files; one JSON line per file")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--pairs", required=True, nargs="+")
    p.add_argument("--names", nargs="+", help="test-set names (default: file stems)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--device", default="auto")
    p.add_argument("--metrics-out", type=Path, help="write the metrics record (results/metrics/<dataset>/<model>.json)")
    p.add_argument("--roc-out", type=Path, help="write the reported (metric-branch) ROC points (with --metrics-out)")
    p.add_argument("--roc-descriptor-out", type=Path, help="write the descriptor-branch ROC points (with --metrics-out)")
    p.add_argument("--dataset", default="unnamed")
    p.add_argument("--model", help="model name in the record (default: kglnet)")
    p.add_argument("--label", help="row label in tables")
    p.add_argument("--selection", default="validation", help="how the checkpoint was selected")
    p.add_argument("--grid-dir", type=Path,
                   help="also draw the qualitative figure per test set: GRID_DIR/matches_<name>.png")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("baseline", help="FPR95 of a hand-crafted method on pair files")
    p.add_argument("--method", required=True, choices=["ncc", "sift", "lghd", "gisift"])
    p.add_argument("--pairs", required=True, nargs="+")
    p.add_argument("--names", nargs="+")
    p.add_argument("--metrics-out", type=Path)
    p.add_argument("--roc-out", type=Path)
    p.add_argument("--dataset", default="unnamed")
    p.add_argument("--label")
    p.set_defaults(func=cmd_baseline, uses_torch=False)

    p = sub.add_parser("report", help="tables (Markdown, CSV) and figures (ROC, training curves) for a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--metrics", nargs="+", required=True, type=Path)
    p.add_argument("--roc", nargs="*", default=[], type=Path)
    p.add_argument("--history", nargs="*", default=[], type=Path)
    p.add_argument("--table-md", required=True, type=Path)
    p.add_argument("--table-csv", required=True, type=Path)
    p.add_argument("--figures-dir", required=True, type=Path)
    p.add_argument("--summary-out", type=Path, help="write the seeds x protocols summary JSON (DVC metrics)")
    p.add_argument("--paper-table", choices=["visnir", "vislwir", "os"],
                   help="the paper's table to put beside ours")
    p.add_argument("--paper-method", nargs="*", default=[], type=_name_value, metavar="MODEL=NAME",
                   help="the paper's name of a model or baseline, e.g. kglnet=KGL-Net sift=SIFT")
    p.set_defaults(func=cmd_report, uses_torch=False)

    _add_matching_parsers(sub)

    p = sub.add_parser("export", help="export a checkpoint's networks to TorchScript (outputs checked)")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--format", default="torchscript", help="torchscript (onnx needs the onnx package)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("registration-benchmark",
                       help="register the 160 warped VIS-NIR pairs with a checkpoint and with SIFT; "
                            "summary.json, pairs.json, table.md")
    p.add_argument("--source-dir", required=True, type=Path, help="the fetched visnir-registration folder")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--methods", nargs="+", default=["kglnet", "sift"])
    p.add_argument("--keypoints", default="sift", choices=["sift", "fast", "grid"])
    p.add_argument("--max-keypoints", type=int, default=500)
    p.add_argument("--model-transform", default="affine", choices=["affine", "homography"])
    p.add_argument("--ransac-px", type=float, default=3.0)
    p.add_argument("--verify-threshold", type=float, help="keep matches with metric probability >= P")
    p.add_argument("--per-category", type=int, help="only the first N pairs of each category (quick runs)")
    p.add_argument("--categories", nargs="+", default=list(REGISTRATION_CATEGORY_NAMES),
                   help="categories to register (default: all eight warped ones)")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_registration_benchmark)

    p = sub.add_parser("regression-check",
                       help="rerun the small deterministic CI pipeline (config/ci.yaml, 2 cores), print `dvc metrics "
                            "diff` against the committed baseline, fail on a worse FPR95 or a missing / reshaped output")
    p.add_argument("--refresh", action="store_true",
                   help="rerun and rewrite the baseline manifest instead of checking; commit it with the new metrics")
    p.add_argument("--no-run", action="store_true", help="compare the outputs already on disk, do not rerun")
    p.add_argument("--tolerance", type=float,
                   help="FPR95 points a metric may worsen (default: the baseline's; with --refresh, sets it)")
    p.add_argument("--config", default=REGRESSION_CONFIG, help="pipeline configuration (default: %(default)s)")
    p.add_argument("--baseline", default=REGRESSION_BASELINE, help="manifest (default: %(default)s)")
    p.add_argument("--root", type=Path, default=Path("."), help="the project checkout (default: here)")
    p.set_defaults(func=cmd_regression_check, uses_torch=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .utils.numerics import apply_portable_cpu_backends

    # KGLNET_PORTABLE_CPU=1 (set by `kglnet regression-check` for its pipeline): the same
    # floating-point results on any x86-64 processor with AVX2 (kglnet.utils.numerics). Only for
    # the commands that run torch: setting its backends imports it (2.5 s on a 2-core CPU).
    if getattr(args, "uses_torch", True):
        apply_portable_cpu_backends()
    # none of these imports torch: the data and report commands do not need it
    from .data import PairFileError
    from .data.sources import SourceError
    from .errors import CheckpointError, TrainingDiverged, TrainingStopped
    from .regression import PipelineFailed

    try:
        return args.func(args)
    except TrainingStopped as exc:
        # stopped on request (SIGTERM, Ctrl-C) after writing last.pt: the status a process ended
        # by that signal would have, so schedulers and Snakemake see it as stopped, not failed
        print(f"kglnet {args.command}: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except (PairFileError, CheckpointError, SourceError, ValueError, KeyError, FileNotFoundError) as exc:
        # bad input: exit status 2, as argparse's usage errors
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"kglnet {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (TrainingDiverged, PipelineFailed, OSError) as exc:
        # the run failed (a non-finite loss, a full disk): exit status 1; the message names the
        # epoch and step or the file, and every output written before stays as it was
        print(f"kglnet {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
