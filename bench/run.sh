#!/usr/bin/env bash
# One command for the whole benchmark: burn (`realdenoise bench`) and the
# PyTorch reference, back to back on the same machine and device, then the
# tables in docs/benchmarks.md.
#
#   bench/run.sh                         # CPU: every size, 1 and the default steps
#   SIZES=256x256,1024x1024 bench/run.sh # fewer sizes
#   DEVICE=cuda bench/run.sh             # GPU machine: burn cuda (f32, f16, bf16) vs PyTorch on CUDA
#
# Environment: DEVICE (cpu|cuda, default cpu), SIZES, STEPS, REPEATS, WARMUP,
# BACKENDS (burn backends, default: cpu for DEVICE=cpu, cuda for DEVICE=cuda;
# `all` = every backend that works here), PRECISIONS (burn), PT_MODES
# (PyTorch modes), WEIGHTS, REALDENOISE_BIN (a prebuilt binary, e.g. on a GPU
# machine without Rust), RESULTS (output folder, default bench/results).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/realdenoise/target}"

DEVICE="${DEVICE:-cpu}"
SIZES="${SIZES:-256x256,1024x1024,2048x2048}"
RESULTS="${RESULTS:-bench/results}"
if [ -z "${WEIGHTS:-}" ]; then
    if [ -f weights/realdenoise.rdnz ]; then WEIGHTS=weights/realdenoise.rdnz; else WEIGHTS=weights/realdenoise-untrained.rdnz; fi
fi
case "$DEVICE" in
    cpu) BACKENDS="${BACKENDS:-cpu}"; PRECISIONS="${PRECISIONS:-f32}"; features="" ;;
    cuda) BACKENDS="${BACKENDS:-cuda}"; PRECISIONS="${PRECISIONS:-f32,f16,bf16}"; features="--features cuda" ;;
    *) echo "DEVICE must be cpu or cuda" >&2; exit 2 ;;
esac

if [ -z "${REALDENOISE_BIN:-}" ]; then
    # shellcheck disable=SC2086
    cargo build --release -p realdenoise-cli $features
    REALDENOISE_BIN="$CARGO_TARGET_DIR/release/realdenoise"
fi
if [ ! -f "$WEIGHTS" ]; then
    "$REALDENOISE_BIN" init-weights "$WEIGHTS"
fi
bash bench/pytorch/setup.sh
PY=bench/pytorch/.venv/bin/python
mkdir -p "$RESULTS"

steps_arg=(); [ -n "${STEPS:-}" ] && steps_arg=(--steps "$STEPS")
repeat_arg=(); [ -n "${REPEATS:-}" ] && repeat_arg=(--repeats "$REPEATS")
warmup_arg=(); [ -n "${WARMUP:-}" ] && warmup_arg=(--warmup "$WARMUP")
backend_arg=(--backend "$BACKENDS"); [ "$BACKENDS" = all ] && backend_arg=()
modes_arg=(); [ -n "${PT_MODES:-}" ] && modes_arg=(--modes "$PT_MODES")

echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1. equality: burn (CPU, f32) reference vs PyTorch on $DEVICE"
"$REALDENOISE_BIN" bench --reference-dump "$RESULTS/reference" --weights "$WEIGHTS"
"$PY" bench/pytorch/verify.py --dump "$RESULTS/reference" --weights "$WEIGHTS" --device "$DEVICE" --json "$RESULTS/verify-$DEVICE.json"

echo "== 2. burn"
burn_cmd=("$REALDENOISE_BIN" bench "${backend_arg[@]}" --precision "$PRECISIONS" --sizes "$SIZES" "${steps_arg[@]}" "${repeat_arg[@]}" "${warmup_arg[@]}"
          --weights "$WEIGHTS" --json "$RESULTS/burn-$DEVICE.json" --markdown "$RESULTS/burn-$DEVICE.md")
"${burn_cmd[@]}"

echo "== 3. PyTorch"
pt_cmd=("$PY" bench/pytorch/bench.py --weights "$WEIGHTS" --device "$DEVICE" --sizes "$SIZES" "${steps_arg[@]}" "${modes_arg[@]}" "${repeat_arg[@]}" "${warmup_arg[@]}"
        --json "$RESULTS/pytorch-$DEVICE.json")
"${pt_cmd[@]}"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 4. docs/benchmarks.md"
"$PY" bench/report.py --burn "$RESULTS/burn-$DEVICE.json" --pytorch "$RESULTS/pytorch-$DEVICE.json" --verify "$RESULTS/verify-$DEVICE.json" \
    --name "$DEVICE" --doc docs/benchmarks.md \
    --command "$(printf '%q ' env DEVICE="$DEVICE" SIZES="$SIZES" ${STEPS:+STEPS=$STEPS} ${REPEATS:+REPEATS=$REPEATS} ${WARMUP:+WARMUP=$WARMUP} bash bench/run.sh)"
