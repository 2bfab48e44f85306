#!/usr/bin/env bash
# The one prepared GPU run (issues 6 and 3): throughput of the fast path against the reference's,
# then the fast path's accuracy against the exact fp32 path on mini VIS-NIR, 3 seeds each.
# Written for the device tool (a machine with CUDA PyTorch, h5py, OpenCV; no Snakemake, no network):
#   run(command="bash workflow/scripts/device_check.sh", carry=["data/raw/visnir-registration"])
# after `kglnet fetch --source visnir-registration --dest data/raw/visnir-registration` here.
# Everything it measures lands in $OUT. Sizes and variants (environment): BENCH_STEPS, EPOCHS, SEEDS,
# BENCH_COMPILE (the compile modes benchmarked), FAST_COMPILE (the fast training path's mode),
# BENCH_BATCH, BENCH_EVAL_PAIRS.
set -euo pipefail
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/kglnet-device-out}
BENCH_STEPS=${BENCH_STEPS:-30}
EPOCHS=${EPOCHS:-10}
SEEDS=${SEEDS:-"0 1 2"}
BENCH_COMPILE=${BENCH_COMPILE:-"none default reduce-overhead"}
FAST_COMPILE=${FAST_COMPILE:-reduce-overhead}
BENCH_BATCH=${BENCH_BATCH:-256}
BENCH_EVAL_PAIRS=${BENCH_EVAL_PAIRS:-65536}
KG="python3 -m kglnet.cli"
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true; python3 -c "import torch; print(torch.__version__)"; } | tee "$OUT/device.txt"

# 1. Throughput, one JSON per project-path variant; the reference path is timed in each run.
for mode in $BENCH_COMPILE; do
  $KG bench --out "$OUT/bench_compile-$mode.json" --compile "$mode" --steps "$BENCH_STEPS" --warmup 5 \
      --batch-size "$BENCH_BATCH" --eval-pairs "$BENCH_EVAL_PAIRS" --eval-batch-size 2048 2>&1 \
      | tee "$OUT/bench_compile-$mode.log"
done

# 2. Mini VIS-NIR from the carried source images, then the same short schedule on both paths.
$KG make-mini --dataset visnir --source-dir data/raw/visnir-registration --out-dir data/visnir \
    --config '{"seed": 0}' --no-progress
TESTS="field forest indoor mountain oldbuilding street urban water"
for seed in $SEEDS; do
  for path in fast fp32; do
    if [ "$path" = fast ]; then
      settings="{\"epochs\": $EPOCHS, \"seed\": $seed, \"precision\": \"bf16\", \"channels_last\": true, \"compile\": \"$FAST_COMPILE\"}"
    else
      settings="{\"epochs\": $EPOCHS, \"seed\": $seed}"
    fi
    run="$OUT/visnir/$path/seed$seed"
    mkdir -p "$run"
    $KG train --train data/visnir/train.h5 --val data/visnir/val.h5 --out-dir "checkpoints/device/$path/seed$seed" \
        --config "$settings" --history-out "$run/history.json" --no-progress
    $KG evaluate --checkpoint "checkpoints/device/$path/seed$seed/best.pt" \
        --pairs $(for t in $TESTS; do echo "data/visnir/$t.h5"; done) > "$run/test.jsonl"
  done
done
echo "done: $(date -u)" | tee "$OUT/done.txt"
