#!/usr/bin/env python3
"""Run a plan from device_plan.py on the GPU machine (CUDA PyTorch, no Snakemake), within a budget.

Needs only the standard library and the package under src/ (its atomic-write and checksum
helpers here; a shim puts `kglnet` on PATH so the plan's shell commands run unchanged). In order:

1. the plan's data jobs (make_mini_*) on the CPU, while `kglnet bench` measures throughput on the
   otherwise idle GPU (one run per ``--bench-compile`` mode and per ``--bench-variant``);
2. a check that the rebuilt pair files are byte-identical to the ones the plan was made from
   (sha256); only then are the hand-crafted baselines' committed scores reused, else they rerun;
3. (``--reuse PLAN:DIR``) the runs an earlier slot finished with the same settings and data are
   copied in and not trained again, so a table larger than one slot fills up over several;
   then the training jobs of all plans, ``--workers`` at a time on the one GPU, in the plans' order
   (``--order`` puts seed 0 of every model before seed 1); a job is started only while its
   expected duration (the longest finished job of the same plan and epochs, else the longest
   finished job scaled by epochs) still ends before ``budget - reserve`` seconds; jobs started
   before any finished have no estimate, and one still running at ``budget - reserve / 2`` is
   stopped (with its process group) and counts as unfinished;
4. evaluation of every run that finished (a run stopped at the budget leaves a best.pt of its
   early epochs, which is not scored), then each plan's report, listing only what this run made
   or reused (status.json names the reused runs):
   like `snakemake --forceall`, the plan's model outputs already in the tree are removed first,
   and inputs of runs that did not finish are dropped from the report's command (status.json
   lists them); the registration benchmark starts on the CPU as soon as its checkpoint exists.

After every job the small outputs (results/, logs/, training logs and configs, bench JSON,
status.json) are packed again into ``OUT/results.tar.gz``, so a run stopped at any moment still
returns what finished; ``--keep-checkpoint`` files come back split into <16 MB parts. Stopped
from outside (SIGTERM, Ctrl-C), the driver kills every job it started, with its process group,
before it exits (status 128 + signal), so no training outlives it on the GPU.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import shutil
import shlex
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path.cwd()
if (ROOT / "src" / "kglnet").is_dir():  # the checkout's package, not an installed one
    sys.path.insert(0, str(ROOT / "src"))

from kglnet.utils.io import atomic_path, sha256_file  # noqa: E402  (after the path is set)

T0 = time.monotonic()
LOCK = threading.Lock()
PACK_LOCK = threading.Lock()
STATUS: dict = {"jobs": [], "notes": []}
PART_BYTES = 15 * 2**20
# Every command the driver starts runs in its own process group (so a job stopped at the budget
# takes its children with it); RUNNING lists them so that a driver stopped from outside (SIGTERM
# at a slot's time limit, Ctrl-C) takes them down too instead of leaving them running. Reentrant:
# the signal handler runs in the main thread, which may be inside spawn() when the signal comes.
RUN_LOCK = threading.RLock()
RUNNING: set[subprocess.Popen] = set()
STOPPING = threading.Event()


def now() -> float:
    return time.monotonic() - T0


def log(msg: str) -> None:
    line = f"[{now():7.1f}s] {msg}"
    print(line, flush=True)
    with LOCK:
        STATUS["notes"].append(line)


def spawn(cmd: list[str], **kwargs) -> subprocess.Popen | None:
    """Start ``cmd`` in its own process group and register it; None once the driver is stopping."""
    with RUN_LOCK:
        if STOPPING.is_set():
            return None
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        RUNNING.add(proc)
    return proc


def reap(proc: subprocess.Popen, timeout: float | None = None) -> int:
    """Wait for a spawned command; past ``timeout`` its whole process group is killed (rc -9)."""
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()
        rc = -9
    with RUN_LOCK:
        RUNNING.discard(proc)
    return rc


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # already gone
        pass


def stop_running(signum: int, frame) -> None:
    """SIGTERM / SIGINT: start nothing more, kill every running command's group, exit 128 + signum."""
    STOPPING.set()
    with RUN_LOCK:
        procs = list(RUNNING)
    for proc in procs:
        _kill_group(proc)
    raise SystemExit(128 + signum)


def job_name(job: dict) -> str:
    w = job.get("wildcards", {})
    return "/".join([job["rule"], *(f"{k}={v}" for k, v in w.items())])


def run_job(plan: dict, job: dict, env: dict, timeout: float | None = None) -> int:
    cwd = ROOT / plan["workdir"]
    for path in job["output"] + job["log"]:
        (cwd / path).parent.mkdir(parents=True, exist_ok=True)
    record = {"plan": plan["name"], "job": job_name(job), "start_s": round(now(), 1)}
    with LOCK:
        STATUS["jobs"].append(record)
    t = time.monotonic()
    proc = spawn(["bash", "-c", job["shell"]], cwd=cwd, env=env)
    rc = -signal.SIGTERM if proc is None else reap(proc, timeout)
    record.update(rc=rc, seconds=round(time.monotonic() - t, 1))
    log(f"{plan['name']}: {job_name(job)} rc={rc} in {record['seconds']} s")
    return rc


def pack(out: Path, plans: list[dict], extra: list[Path]) -> None:
    """Everything small that the run made, into OUT/results.tar.gz (replaced atomically)."""
    with PACK_LOCK:
        _pack(out, plans, extra)


def _pack(out: Path, plans: list[dict], extra: list[Path]) -> None:
    with LOCK:
        status = json.dumps(STATUS, indent=1).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("status.json")
        info.size, info.mtime = len(status), int(time.time())
        tar.addfile(info, io.BytesIO(status))
        for path in extra:
            if path.is_file():
                tar.add(path, arcname=f"device/{path.name}")
        for plan in plans:
            # what the plan's jobs declare (outputs, logs) and the small files of each run folder
            base = ROOT / plan["workdir"]
            paths: set[Path] = set()
            for job in plan["jobs"]:
                if job["rule"] == "fetch_source" or (plan is not plans[0] and job["rule"].startswith("make_")):
                    continue
                for rel in job["output"] + job["log"]:
                    path = base / rel
                    if path.is_dir():
                        paths.update(p for p in path.rglob("*") if p.is_file())
                    elif path.is_file() and (not rel.startswith("data/") or rel.endswith("summary.json")):
                        paths.add(path)
                    if job["rule"] == "train" and rel.endswith("best.pt"):
                        paths.update(p for p in path.parent.glob("*") if p.suffix in (".json", ".log"))
            for path in sorted(p for p in paths if p.suffix not in (".pt", ".h5") and "qualitative" not in p.parts):
                tar.add(path, arcname=f"{plan['name']}/{path.relative_to(base)}")
    with atomic_path(out / "results.tar.gz", suffix=".tmp") as tmp:
        tmp.write_bytes(buf.getvalue())


def keep_checkpoint(out: Path, path: Path, tag: str) -> None:
    data = path.read_bytes()
    for i in range(0, len(data), PART_BYTES):
        with atomic_path(out / f"{tag}.part{i // PART_BYTES}", suffix=".tmp") as tmp:
            tmp.write_bytes(data[i:i + PART_BYTES])
    log(f"kept {path} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}) as {tag}.part*")


def seed_order(job: dict) -> tuple:
    # seed 0 of every model first; within a seed, KGL-Net itself before its variants
    return (int(job["wildcards"].get("seed", 0)), job["wildcards"].get("model") != "kglnet")



def train_settings(job: dict) -> dict:
    """The training settings a train job passes with ``--config``."""
    return json.loads(job["shell"].split("--config '", 1)[1].split("'", 1)[0])


def reusable_runs(plan: dict, source: Path) -> dict[str, list[str]]:
    """Training jobs of ``plan`` whose finished run an earlier slot left in ``source`` (``plan``'s
    files as its results.tar.gz unpacked: results/..., checkpoints/<run>/config.json): same
    settings (the resume fingerprint and the epochs), same model code (the run's recorded
    ``model_fingerprint``, :func:`kglnet.train.model_fingerprint`), same input files (sha256 of the
    training, validation and monitored files against the run's config.json), and every output of
    its training and evaluation present. Returns {train job name: files to copy}."""
    import torch

    from kglnet.train import TrainConfig, create_seeded_model, model_fingerprint

    @functools.lru_cache(maxsize=None)
    def fingerprint(model: str, seed: int) -> str:
        with torch.random.fork_rng(devices=[]):
            return model_fingerprint(create_seeded_model(model, seed))

    wd = ROOT / plan["workdir"]
    digest = functools.lru_cache(maxsize=None)(sha256_file)  # the runs share their data files
    evaluations = {json.dumps(j["wildcards"], sort_keys=True): j for j in plan["jobs"] if j["rule"] == "evaluate_model"}
    found: dict[str, list[str]] = {}
    for job in plan["jobs"]:
        evaluation = evaluations.get(json.dumps(job["wildcards"], sort_keys=True))
        if job["rule"] != "train" or evaluation is None:
            continue
        run_dir = Path(next(p for p in job["output"] if p.endswith("best.pt"))).parent
        config_path = source / run_dir / "config.json"
        outputs = [p for p in job["output"] + evaluation["output"] if not p.endswith(".pt")]
        if not config_path.is_file() or not all((source / p).is_file() for p in outputs):
            continue
        recorded = json.loads(config_path.read_text())
        want = TrainConfig.from_dict(train_settings(job))
        have = TrainConfig.from_dict(recorded["train"])
        if want.resume_key() != have.resume_key() or want.epochs != have.epochs:
            log(f"not reused (other settings): {plan['name']}:{job_name(job)} from {source}")
            continue
        if recorded.get("model_fingerprint") != fingerprint(want.model, want.seed):
            log(f"not reused (other model code): {plan['name']}:{job_name(job)} from {source}")
            continue
        digests = {recorded["train_file"]: recorded["inputs_sha256"]["train"],
                   recorded["val_file"]: recorded["inputs_sha256"]["val"],
                   **{m["file"]: m["sha256"] for m in recorded.get("monitor", {}).values()},
                   # a second-stage run (init_from): the checkpoint it started from
                   **({recorded["init_from"]["file"]: recorded["inputs_sha256"]["init"]}
                      if "init" in recorded["inputs_sha256"] else {})}
        # Slots bring back no .pt, so a second stage (init_from) whose first stage's best.pt is not
        # in this working tree cannot be checked and is not reused. Nor can it train here on a
        # first stage reused from an earlier slot: plan both stages of a run into one slot.
        missing = [p for p in job["input"] if not (wd / p).is_file()]
        if missing:
            log(f"not reused (input not here: {', '.join(missing)}): {plan['name']}:{job_name(job)} from {source}")
            continue
        if any(digests.get(p) != digest(wd / p) for p in job["input"]):
            log(f"not reused (other data): {plan['name']}:{job_name(job)} from {source}")
            continue
        siblings = [str(run_dir / f.name) for f in (source / run_dir).iterdir() if f.suffix in (".json", ".log")]
        found[job_name(job)] = sorted(set(outputs + siblings))
    return found

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", type=float, required=True, help="seconds for the whole run")
    ap.add_argument("--reserve", type=float, default=60.0, help="seconds kept for evaluation and reports")
    ap.add_argument("--workers", type=int, default=6, help="training jobs at a time on the GPU")
    ap.add_argument("--order", choices=["plan", "seed"], default="seed")
    ap.add_argument("--bench-compile", nargs="*", default=["none", "reduce-overhead"])
    ap.add_argument("--bench-steps", type=int, default=30)
    ap.add_argument("--bench-eval-pairs", type=int, default=65536)
    ap.add_argument("--bench-batch", type=int, default=256)
    ap.add_argument("--bench-warmup", type=int, default=5)
    ap.add_argument("--bench-variant", action="append", default=[], metavar="NAME=FLAGS",
                    help="one more `kglnet bench` run, named NAME, with these extra flags (repeatable; they come "
                         "last, so they override the shared --bench-* settings), "
                         "e.g. ro-fused='--compile reduce-overhead --fused-optimizer --phases'")
    ap.add_argument("--keep-checkpoint", nargs="*", default=[], help="PLAN:PATH of checkpoints to bring back")
    ap.add_argument("--reuse", action="append", default=[], metavar="PLAN:DIR",
                    help="finished runs of an earlier slot (DIR: PLAN's files of its results.tar.gz, "
                         "unpacked); a training run found there with the same settings and data is not "
                         "trained again, its scores are copied into this run's table (repeatable)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, stop_running)
    signal.signal(signal.SIGINT, stop_running)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    plans = json.loads(args.plan.read_text())["plans"]

    shim = Path(tempfile.mkdtemp(prefix="kglnet-bin-"))
    (shim / "kglnet").write_text(f'#!/bin/sh\nexec {sys.executable} -m kglnet "$@"\n')
    (shim / "kglnet").chmod(0o755)
    env = dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}", PYTHONUNBUFFERED="1")
    if (ROOT / "src" / "kglnet").is_dir():  # the checkout's package, not an installed one
        env["PYTHONPATH"] = str(ROOT / "src")
    extra: list[Path] = []

    env_txt = out / "env.txt"
    with open(env_txt, "w") as f:
        subprocess.run("nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; "
                       f"{sys.executable} -c 'import torch, h5py, cv2, numpy; print(torch.__version__, torch.version.cuda, "
                       "h5py.__version__, cv2.__version__, numpy.__version__)'",
                       shell=True, stdout=f, stderr=subprocess.STDOUT, env=env)
    extra.append(env_txt)
    log(env_txt.read_text().replace("\n", " | "))

    # A forced run, like `snakemake --forceall`: outputs already in the tree (committed results
    # of an earlier run) are removed first, so a report can only show what this run made.
    for plan in plans:
        for job in plan["jobs"]:
            if job["rule"] in ("train", "evaluate_model", "report", "registration_benchmark"):
                for rel in job["output"]:
                    path = ROOT / plan["workdir"] / rel
                    if path.is_dir():
                        shutil.rmtree(path)
                    elif path.exists():
                        path.unlink()

    # 1. data jobs of the first plan on the CPU, bench on the GPU meanwhile
    first = plans[0]
    data_jobs = [j for j in first["jobs"] if j["rule"].startswith("make_")]
    for job in first["jobs"]:
        if job["rule"] == "fetch_source" and not all((ROOT / p).exists() for p in job["output"]):
            log(f"missing carried source: {job['output']}")
            return 2
    data_pool = ThreadPoolExecutor(max(1, len(data_jobs)))
    data_futures = [data_pool.submit(run_job, first, j, env) for j in data_jobs]
    bench_dir = out / "bench"
    bench_dir.mkdir(exist_ok=True)
    variants = [(f"compile-{mode}", ["--compile", mode]) for mode in args.bench_compile]
    for item in args.bench_variant:
        name, sep, flags = item.partition("=")
        if not sep or not name:
            log(f"--bench-variant {item!r}: expected NAME=FLAGS")
            return 2
        variants.append((name, shlex.split(flags)))
    for name, flags in variants:
        target = bench_dir / f"bench_{name}.json"
        # the variant's flags last: argparse keeps an option's last value, so a variant can
        # override the shared settings (e.g. --eval-batch-size 8192)
        cmd = [sys.executable, "-m", "kglnet", "bench", "--out", str(target),
               "--steps", str(args.bench_steps), "--warmup", str(args.bench_warmup), "--batch-size", str(args.bench_batch),
               "--eval-pairs", str(args.bench_eval_pairs), "--eval-batch-size", "2048", *flags]
        t = time.monotonic()
        with open(bench_dir / f"bench_{name}.log", "w") as f:
            proc = spawn(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
            rc = -signal.SIGTERM if proc is None else reap(proc)
        log(f"bench {name}: rc={rc} in {time.monotonic() - t:.1f} s")
        extra += [target, bench_dir / f"bench_{name}.log"]
        pack(out, plans, extra)
    if any(f.result() != 0 for f in data_futures):
        log("a data job failed")
        pack(out, plans, extra)
        return 1

    # 2. byte-identical data?
    mismatched = [p for p, digest in first["expected_data"].items() if sha256_file(ROOT / p) != digest]
    STATUS["data_identical"] = not mismatched
    STATUS["data_mismatched"] = mismatched
    log(f"rebuilt pair files identical to the plan's: {not mismatched} ({len(first['expected_data'])} files)")
    for plan in plans[1:]:
        wd = ROOT / plan["workdir"]
        wd.mkdir(parents=True, exist_ok=True)
        if not (wd / "data").exists():
            (wd / "data").symlink_to(ROOT / "data")

    # The hand-crafted baselines are deterministic: with the same bytes in, the committed scores
    # are the scores; otherwise they run (CPU) beside the training. Other plans copy the first's.
    cpu_pool = ThreadPoolExecutor(4)
    baseline_jobs = [j for j in first["jobs"] if j["rule"] == "evaluate_baseline"]
    baseline_futures = [cpu_pool.submit(run_job, first, j, env) for j in baseline_jobs
                        if mismatched or not all((ROOT / p).exists() for p in j["output"])]
    STATUS["baselines_rerun"] = len(baseline_futures)

    # Runs an earlier slot finished (--reuse): copied in, not trained or scored again, so a table
    # of more runs than one slot can train fills up over several slots.
    reused: set[tuple[str, str]] = set()
    for item in args.reuse:
        name, _, source = item.partition(":")
        plan = next((p for p in plans if p["name"] == name), None)
        if plan is None or not Path(source).is_dir():
            log(f"--reuse {item!r}: expected PLAN:DIR with a plan of this run and an existing folder")
            return 2
        for job, files in reusable_runs(plan, Path(source)).items():
            for rel in files:
                target = ROOT / plan["workdir"] / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(source) / rel, target)
            reused.add((plan["name"], job))
            log(f"reused: {plan['name']}:{job} from {source}")
    STATUS["reused"] = sorted(f"{p}:{j}" for p, j in reused)

    # 3. training, fitted into the budget
    deadline = args.budget - args.reserve
    # the short comparison plans first, then the table runs seed by seed (seed 0 of every model
    # before seed 1), so what the budget cuts is the last seeds
    def to_train(plan: dict, job: dict) -> bool:
        return job["rule"] == "train" and (plan["name"], job_name(job)) not in reused

    queue = [(p, j) for p in plans[1:] for j in p["jobs"] if to_train(p, j)]
    table = [(first, j) for j in first["jobs"] if to_train(first, j)]
    rank = {t.rsplit("/", 1)[-1].split(".")[0]: i for i, t in enumerate(first["targets"])}
    queue += sorted(table, key=lambda pj: (*seed_order(pj[1]), rank.get(pj[1]["wildcards"].get("dataset"), len(rank)))
                    ) if args.order == "seed" else table
    # (plan name, checkpoint path) of every training job that finished: a run stopped at the
    # budget leaves a best.pt of its early epochs, which must not be scored as the run's result
    finished: set[tuple[str, str]] = set()

    def done_run(plan: dict, job: dict) -> bool:
        return all((plan["name"], p) in finished for p in job["input"] if p.startswith("checkpoints/"))

    durations: dict[tuple, float] = {}
    skipped: list[str] = []

    def epochs_of(job: dict) -> int:
        return int(train_settings(job).get("epochs", 100))

    # Jobs that need one checkpoint and the CPU more than the GPU (the registration benchmark)
    # start as soon as their checkpoint exists, beside the remaining training.
    followers = [(p, j) for p in plans for j in p["jobs"] if j["rule"] == "registration_benchmark"]
    follower_futures = []

    def start_ready_followers() -> None:
        with LOCK:
            ready = [pj for pj in followers if done_run(*pj)]
            for pj in ready:
                followers.remove(pj)
        for plan, job in ready:
            follower_futures.append(cpu_pool.submit(
                run_job, plan, job, env, max(1.0, args.budget - 10 - now())))

    def train_one(plan: dict, job: dict) -> None:
        key = (plan["name"], epochs_of(job))
        expected = durations.get(key)
        if expected is None and durations:
            # no finished run of this length yet: scale the longest finished one by its epochs
            expected = max(d * key[1] / k[1] for k, d in durations.items())
        if now() > deadline or (expected is not None and now() + expected > deadline):
            skipped.append(f"{plan['name']}:{job_name(job)}")
            log(f"not started (budget): {plan['name']}:{job_name(job)}")
            return
        t = time.monotonic()
        try:
            rc = run_job(plan, job, env, timeout=max(1.0, args.budget - args.reserve / 2 - now()))
            if rc == 0:
                durations[key] = max(durations.get(key, 0.0), time.monotonic() - t)
                with LOCK:
                    finished.update((plan["name"], p) for p in job["output"])
                start_ready_followers()
            pack(out, plans, extra)
        except Exception as exc:  # one job's trouble must not stop the others
            log(f"{plan['name']}:{job_name(job)} failed in the driver: {exc!r}")

    with ThreadPoolExecutor(args.workers) as gpu_pool:
        list(gpu_pool.map(lambda pj: train_one(*pj), queue))
    STATUS["skipped_training"] = skipped
    for plan, job in followers:  # their checkpoint was not trained in this run
        log(f"not run (no checkpoint of this run): {plan['name']}:{job_name(job)}")

    # 4. evaluation, reports, registration
    evals = [(p, j) for p in plans for j in p["jobs"] if j["rule"] == "evaluate_model" and done_run(p, j)]
    with ThreadPoolExecutor(max(1, args.workers)) as pool:
        list(pool.map(lambda pj: run_job(*pj, env), evals))
    for f in baseline_futures:
        f.result()
    for plan in plans[1:]:
        for job in plan["jobs"]:
            for p in job["output"] if job["rule"] == "evaluate_baseline" else []:
                if (ROOT / p).exists():
                    (ROOT / plan["workdir"] / p).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / p, ROOT / plan["workdir"] / p)
    pack(out, plans, extra)
    for plan in plans:
        for job in plan["jobs"]:
            if job["rule"] != "report":
                continue
            cwd = ROOT / plan["workdir"]
            absent = [p for p in job["input"] if not (cwd / p).exists()]
            job = dict(job, shell=" ".join(t for t in job["shell"].split(" ") if t not in absent))
            STATUS.setdefault("report_inputs_absent", {})[plan["name"]] = absent
            run_job(plan, job, env)
            pack(out, plans, extra)
    for f in follower_futures:
        f.result()
    for item in args.keep_checkpoint:
        name, path = item.split(":", 1)
        plan = next(p for p in plans if p["name"] == name)
        ckpt = ROOT / plan["workdir"] / path
        if (name, path) in finished:
            keep_checkpoint(out, ckpt, "checkpoint")
    STATUS["total_seconds"] = round(now(), 1)
    pack(out, plans, extra)
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
