#!/usr/bin/env bash
# One chunk of CUDA training on a lent GPU machine that has no Rust and no
# network (training/README.md, "Training on a lent GPU"). It runs the
# realdenoise-train binary built here with `--features cuda` and carried
# along, resumes the run, and copies the run directory into $OUT so it comes
# back. Everything after `--` goes to `realdenoise-train train`.
#
#   BIN=out/gpu/realdenoise-train RUN=runs/gpu MINUTES=8 bash training/gpu/chunk.sh -- --batch-size 32
#
# FIT=1 sizes the run to this one call, for a lent machine that gives one
# call of device time: a probe of PROBE steps measures the speed (its first
# step, which JIT-compiles the kernels, left out), then the run resumes with
# `--iterations` chosen so that the cosine schedule ends, and the learning
# rate reaches its floor, just before MINUTES (counted from the script's
# start) run out, whatever the GPU's speed.
#
# BIN may travel as BIN.gz; it is unpacked when newer than BIN. BACKEND
# (default cuda) lets the same script be tried here on the CPU.
#
# BACKEND=cuda-tch runs a BIN built with `--features tch` against libtorch
# 2.11 (`make gpu-trainer-tch`) on the lent machine's own PyTorch 2.11 (its
# python3 holds it, with CUDA 13 and cuDNN): cuDNN's kernels are compiled
# already, so the first step runs within seconds, where burn's `cuda` backend
# JIT-compiles and autotunes every kernel first (training/README.md).
set -euo pipefail
started=$(date +%s)
BIN=${BIN:-out/gpu/realdenoise-train}
RUN=${RUN:-runs/gpu}
DATA=${DATA:-training/data/set}
MINUTES=${MINUTES:-8}
BACKEND=${BACKEND:-cuda}
FIT=${FIT:-0}
PROBE=${PROBE:-50}
OUT=${OUT:?set OUT to the directory that comes back}
[ "${1:-}" = "--" ] && shift

# The run lives in an ignored directory while the machine stays warm (kept
# between calls); a fresh machine starts from the copy in the working tree.
LIVE=out/live/$(basename "$RUN")
mkdir -p "$(dirname "$LIVE")"
if [ ! -f "$LIVE/config.json" ] && [ -f "$RUN/config.json" ]; then
    cp -r "$RUN" "$LIVE"
fi
# The binary travels gzip-compressed (50 MB stripped, 13 MB compressed).
if [ -f "$BIN.gz" ] && { [ ! -x "$BIN" ] || [ "$BIN.gz" -nt "$BIN" ]; }; then
    gzip -dc "$BIN.gz" > "$BIN" && chmod +x "$BIN"
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
if [ "$BACKEND" = cuda-tch ] || [ "$BACKEND" = cpu-tch ]; then
    # libtorch and the CUDA libraries it needs, from the machine's PyTorch
    # (TORCH_PYTHON overrides which python holds it).
    torch_dir=$("${TORCH_PYTHON:-python3}" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
    site=$(dirname "$torch_dir")
    libraries="$torch_dir/lib"
    for directory in "$site"/nvidia/*/lib "$site"/nvidia/cu13/lib "$site"/cuda/*/lib; do
        [ -d "$directory" ] && libraries="$libraries:$directory"
    done
    export LD_LIBRARY_PATH="$libraries${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "libtorch from $torch_dir ($("${TORCH_PYTHON:-python3}" -c 'import torch; print(torch.__version__)'))"
    # Without a GPU that libtorch can use, `train` refuses cuda-tch at once
    # (before touching the run); the call then trains on the machine's
    # cores with cpu-tch rather than coming back empty.
    if [ "$BACKEND" = cuda-tch ] && ! "$BIN" train --run "$LIVE.probe-cuda" --data "$DATA" --backend cuda-tch --steps 1 --iterations 1 >/dev/null 2>&1; then
        echo "cuda-tch is unusable here; training with cpu-tch on $(nproc) cores instead"
        BACKEND=cpu-tch
    fi
    rm -rf "$LIVE.probe-cuda"
fi
# cudarc loads the driver and NVRTC at run time; NVRTC comes with the CUDA
# toolkit or with PyTorch's wheels.
CUDA_ROOT=${CUDA_PATH:-/usr/local/cuda}
nvrtc_dirs=$(find "$CUDA_ROOT/" /usr/lib /usr/local/lib /opt -name 'libnvrtc.so*' -not -path '*/stubs/*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':' || true)
export LD_LIBRARY_PATH="${nvrtc_dirs}${LD_LIBRARY_PATH:-}"
export CUDA_PATH=$CUDA_ROOT
echo "NVRTC from: ${nvrtc_dirs:-not found}"

# cubecl JIT-compiles every kernel with NVRTC and, by default, autotunes
# each matmul and convolution shape over many candidates: a first training
# step measured more than 1,300 compilations in 100 s. Minimal autotuning and
# on-disk caches (kept in out/ while the machine stays warm) cut that.
# This file is written on the lent machine only.
if [ ! -f cubecl.toml ] && [ "${BACKEND%-tch}" = "$BACKEND" ]; then
    cat > cubecl.toml <<'TOML'
[autotune]
level = "minimal"
cache = { file = "out/cubecl-cache/autotune" }
[compilation]
cache = { file = "out/cubecl-cache/compilation" }
TOML
fi

# How fast this machine's cores make batches (a few seconds): the run's
# closing line says how long the GPU then waited for them.
"$BIN" bench-data --data "$DATA" --batches 5 --threads "$(nproc)" || true

status=0
if [ "$FIT" = 1 ]; then
    # The step the run is at before the probe (0 for a new run).
    from=$(awk -F, 'NR > 1 { step = $1 } END { print step + 0 }' "$LIVE/log.csv" 2>/dev/null || echo 0)
    "$BIN" train --run "$LIVE" --data "$DATA" --backend "$BACKEND" --steps "$PROBE" "$@" || status=$?
    if [ "$status" = 0 ]; then
        # Seconds per step over the probe's rows after its first step
        # (the log's seconds column is cumulative).
        read -r at per_step < <(awk -F, -v from="$from" 'NR > 1 && $1 > from + 1 {
                if (!n++) { s0 = $4; k0 = $1 } s1 = $4; k1 = $1 }
            END { print k1 + 0, (k1 > k0 ? (s1 - s0) / (k1 - k0) : 0) }' "$LIVE/log.csv")
        left=$(( MINUTES * 60 - ($(date +%s) - started) ))
        # 80% of what is left: validations, checkpoints, the copy to $OUT, and the
        # probe's estimate (the log counts seconds to the millisecond).
        iterations=$(awk -v at="$at" -v left="$left" -v per="$per_step" \
            'BEGIN { n = (per > 0 && left > 0) ? int(0.8 * left / per) : 0; print at + n }')
        echo "probe: step $at, $per_step s/step, ${left} s left: the schedule ends at step $iterations"
        if [ "$iterations" -gt "$at" ]; then
            "$BIN" train --run "$LIVE" --data "$DATA" --backend "$BACKEND" --iterations "$iterations" \
                --minutes "$(awk -v left="$left" 'BEGIN { print (left - 15) / 60 }')" || status=$?
        fi
    fi
else
    "$BIN" train --run "$LIVE" --data "$DATA" --backend "$BACKEND" --minutes "$MINUTES" "$@" || status=$?
fi
# The validated steps of the log (step, lr, loss, seconds, PSNR 4 steps, 1 step).
[ -f "$LIVE/log.csv" ] && awk -F, 'NR == 1 || $5 != ""' "$LIVE/log.csv" | tail -n 12
# What comes back from $OUT is at most 8 files of at most 16 MiB each: the
# run directory (~18 MB with its checkpoint) travels as one tar in 15 MiB
# parts. Here: cat OUT/NAME.tar.part-* | tar -x -C runs/
name=$(basename "$LIVE")
tar -C "$(dirname "$LIVE")" -cf - "$name" | split -b 15M -d - "$OUT/$name.tar.part-" || status=$?
ls -l "$OUT"
exit $status
