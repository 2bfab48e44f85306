#!/usr/bin/env python3
"""Turn Snakemake's own jobs into a plan that runs on a machine without Snakemake (the GPU slot).

The workflow is defined once, in the Snakefile: this script asks Snakemake for a forced dry run
of the given config files and targets (`snakemake -n -p --forceall`) and records every job's
rule, inputs, outputs, log and shell command as JSON. `device_run.py` executes such a plan there
with the same commands, so nothing of a step is written twice. Beside the jobs, the plan records
the sha256 of every pair file this machine built (data/<dataset>/summary.json), so the GPU run can
show that it rebuilt byte-identical data before it reuses the hand-crafted baselines' scores.

    python workflow/scripts/device_plan.py --out .device/plan.json \\
        --plan visnir . config/mini.yaml config/gpu.yaml -- results/tables/visnir.md \\
        --plan fastpath fastpath config/mini.yaml config/gpu-fastpath.yaml -- results/tables/visnir.md

Each ``--plan NAME WORKDIR CONFIG... -- TARGET...`` becomes one entry; a plan whose WORKDIR is
not "." runs in that folder beside the first, reading the first plan's data (its own data jobs
are dropped), so two configurations that write the same paths do not collide.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

_FIELDS = ("input", "output", "log")


def parse_dry_run(text: str, require_shell: bool = True) -> list[dict]:
    """Jobs of `snakemake -n -p` output: rule, wildcards, input/output/log lists, threads,
    resources and shell command ("" for a job without one, an error with ``require_shell``)."""
    jobs: list[dict] = []
    job: dict | None = None
    for line in text.splitlines():
        head = re.match(r"^(?:local)?rule (\w+):$", line)
        if head:
            job = {"rule": head.group(1), "input": [], "output": [], "log": [], "wildcards": {},
                   "threads": 1, "resources": {}, "shell": ""}
            jobs.append(job)
            continue
        if job is None:
            continue
        field = re.match(r"^    (\w+): (.*)$", line)
        if field and field.group(1) in _FIELDS:
            job[field.group(1)] = [p.strip() for p in field.group(2).split(", ") if p.strip()]
        elif field and field.group(1) in ("wildcards", "resources"):
            job[field.group(1)] = dict(kv.split("=", 1) for kv in field.group(2).split(", "))
        elif field and field.group(1) == "threads":
            job["threads"] = int(field.group(2))
        elif line.startswith("Shell command: "):
            job["shell"] = line[len("Shell command: "):]
            job = None
    missing = [j["rule"] for j in jobs if not j["shell"]]
    if require_shell and missing:
        raise ValueError(f"dry run lists jobs without a shell command: {', '.join(sorted(set(missing)))}")
    return jobs


def expected_data(jobs: list[dict]) -> dict[str, str]:
    """sha256 of each pair file the plan's data jobs make, as this machine's summary.json has it."""
    out: dict[str, str] = {}
    for job in jobs:
        for path in job["output"]:
            if not path.endswith("summary.json") or not path.startswith("data/"):
                continue
            summary = Path(path)
            if not summary.exists():
                continue
            splits = json.loads(summary.read_text()).get("splits", {})
            for split in splits.values():
                out[str(summary.parent / split["file"])] = split["sha256"]
    return out


def make_plan(name: str, workdir: str, configfiles: list[str], targets: list[str]) -> dict:
    command = [sys.executable, "-m", "snakemake", "-n", "-p", "--forceall", "--cores", "2", "--configfile", *configfiles, "--", *targets]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"plan {name}: snakemake dry run failed:\n{done.stdout}\n{done.stderr}")
    jobs = parse_dry_run(done.stdout)
    return {"name": name, "workdir": workdir, "configfiles": configfiles, "targets": targets,
            "snakemake": " ".join(["snakemake", *command[3:]]), "expected_data": expected_data(jobs), "jobs": jobs}


def _split_plans(argv: list[str]) -> list[tuple[str, str, list[str], list[str]]]:
    plans, i = [], 0
    while i < len(argv):
        if argv[i] != "--plan":
            sys.exit(f"expected --plan, got {argv[i]!r}")
        j = i + 1
        while j < len(argv) and argv[j] != "--plan":
            j += 1
        part = argv[i + 1:j]
        if "--" not in part or len(part) < 5:
            sys.exit("each --plan needs NAME WORKDIR CONFIG... -- TARGET...")
        sep = part.index("--")
        plans.append((part[0], part[1], part[2:sep], part[sep + 1:]))
        i = j
    return plans


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    if "--plan" not in argv:
        parser.error("at least one --plan NAME WORKDIR CONFIG... -- TARGET...")
    split = argv.index("--plan")
    args = parser.parse_args(argv[:split])
    plans = [make_plan(*p) for p in _split_plans(argv[split:])]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"plans": plans}, indent=1) + "\n")
    for plan in plans:
        counts: dict[str, int] = {}
        for job in plan["jobs"]:
            counts[job["rule"]] = counts.get(job["rule"], 0) + 1
        print(f"{plan['name']} ({plan['workdir']}): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
