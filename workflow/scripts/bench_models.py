#!/usr/bin/env python3
"""Training and evaluation speed of every registered model (or those named), one `kglnet bench`
run each, on one device; for sizing the baselines' runs (issue 5) and comparing methods' cost.

    python workflow/scripts/bench_models.py --out results/benchmarks/cpu-2core-models \
        [--models hardnet kglnet ...] -- --device cpu --batch-size 16 --steps 3 --warmup 1 ...

Everything after ``--`` goes to each `kglnet bench` run (``--model`` and ``--out`` are set here).
Writes OUT/<model>.json (the bench record), OUT/<model>.log, and OUT/summary.json and
OUT/summary.md (one row per model, fastest training first; a model whose run failed is listed
with its exit status). Each run is a separate process, so one model's compilation caches or
memory do not affect the next.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if (ROOT / "src" / "kglnet").is_dir():  # the checkout's package, not an installed one
    sys.path.insert(0, str(ROOT / "src"))

from kglnet.models import list_models  # noqa: E402  (after the path is set)
from kglnet.utils.io import atomic_write_json, atomic_write_text  # noqa: E402


def summary_rows(out: Path, models: list[str], status: dict[str, int]) -> list[dict]:
    rows = []
    for name in models:
        path = out / f"{name}.json"
        if status[name] != 0 or not path.is_file():
            rows.append({"model": name, "rc": status[name]})
            continue
        r = json.loads(path.read_text())
        rows.append({"model": name, "rc": 0, "parameters": r["parameters"], "device": r["device"],
                     "train_pairs_per_s": r["train_pairs_per_s"], "eval_pairs_per_s": r["eval_pairs_per_s"],
                     "train_gflop_per_pair": r["gflop_per_pair"]["train"],
                     "eval_gflop_per_pair": r["gflop_per_pair"]["eval"]})
    return sorted(rows, key=lambda row: -row.get("train_pairs_per_s", -1.0))


def markdown(rows: list[dict], bench_args: list[str]) -> str:
    lines = [f"Benchmark flags: `{' '.join(bench_args)}`", "",
             "| model | parameters | training pairs/s | evaluation pairs/s | GFLOP per training pair | GFLOP per evaluated pair |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        if row["rc"] != 0:
            lines.append(f"| {row['model']} | failed (exit {row['rc']}) | | | | |")
            continue
        lines.append(f"| {row['model']} | {row['parameters']:,} | {row['train_pairs_per_s']:,.1f} | "
                     f"{row['eval_pairs_per_s']:,.1f} | {row['train_gflop_per_pair']:.3f} | {row['eval_gflop_per_pair']:.3f} |")
    devices = sorted({row["device"] for row in rows if row["rc"] == 0})
    return "\n".join(lines + ["", f"Device: {'; '.join(devices)}", ""])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, bench_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the records and the summary")
    ap.add_argument("--models", nargs="*", help="registered models (default: all)")
    args = ap.parse_args(ours)
    known = list_models()
    models = args.models or known
    unknown = [m for m in models if m not in known]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; registered models: {', '.join(known)}")
    if any(a in ("--model", "--out") for a in bench_args):
        ap.error("--model and --out are set per run by this script; leave them out after --")
    args.out.mkdir(parents=True, exist_ok=True)
    status: dict[str, int] = {}
    for name in models:
        t = time.monotonic()
        with open(args.out / f"{name}.log", "w") as log:
            status[name] = subprocess.run(
                [sys.executable, "-m", "kglnet", "bench", "--model", name, "--out", str(args.out / f"{name}.json"),
                 *bench_args], stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(
                    [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}).returncode
        print(f"{name}: exit {status[name]} in {time.monotonic() - t:.1f} s", flush=True)
    rows = summary_rows(args.out, models, status)
    atomic_write_json(args.out / "summary.json", {"bench_args": bench_args, "models": rows})
    atomic_write_text(args.out / "summary.md", markdown(rows, bench_args))
    return 0 if all(rc == 0 for rc in status.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
