#!/usr/bin/env bash
# One chunk of CUDA training on a lent GPU machine that has no Rust and no
# network (training/README.md, "Training on a lent GPU"). It runs the
# realdenoise-train binary built here with `--features cuda` and carried
# along, resumes the run, and copies the run directory into $OUT so it comes
# back. Everything after `--` goes to `realdenoise-train train`.
#
#   BIN=out/gpu/realdenoise-train RUN=runs/gpu MINUTES=8 bash training/gpu/chunk.sh -- --batch-size 32
#
# BIN may travel as BIN.gz; it is unpacked when newer than BIN.
set -euo pipefail
BIN=${BIN:-out/gpu/realdenoise-train}
RUN=${RUN:-runs/gpu}
DATA=${DATA:-training/data/set}
MINUTES=${MINUTES:-8}
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
# cudarc loads the driver and NVRTC at run time; NVRTC comes with the CUDA
# toolkit or with PyTorch's wheels.
CUDA_ROOT=${CUDA_PATH:-/usr/local/cuda}
nvrtc_dirs=$(find "$CUDA_ROOT/" /usr/lib /usr/local/lib /opt -name 'libnvrtc.so*' -not -path '*/stubs/*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${nvrtc_dirs}${LD_LIBRARY_PATH:-}"
export CUDA_PATH=$CUDA_ROOT
echo "NVRTC from: ${nvrtc_dirs:-not found}"

# cubecl JIT-compiles every kernel with NVRTC and, by default, autotunes
# each matmul and convolution shape over many candidates: a first training
# step measured more than 1,300 compilations in 100 s. Minimal autotuning and
# on-disk caches (kept in out/ while the machine stays warm) cut that.
# This file is written on the lent machine only.
if [ ! -f cubecl.toml ]; then
    cat > cubecl.toml <<'TOML'
[autotune]
level = "minimal"
cache = { file = "out/cubecl-cache/autotune" }
[compilation]
cache = { file = "out/cubecl-cache/compilation" }
TOML
fi

status=0
"$BIN" train --run "$LIVE" --data "$DATA" --backend cuda --minutes "$MINUTES" "$@" || status=$?
# The validated steps of the log (step, lr, loss, seconds, PSNR 4 steps, 1 step).
[ -f "$LIVE/log.csv" ] && awk -F, 'NR == 1 || $5 != ""' "$LIVE/log.csv" | tail -n 12
cp -r "$LIVE" "$OUT/" 2>/dev/null || true
exit $status
