#!/usr/bin/env bash
# `make bench-onnx`: realdenoise side by side with ONNX Runtime on the same
# network and weights, one network evaluation at a time, in one run:
#   1. export the network to ONNX from bench/pytorch/model.py and check ONNX
#      Runtime against burn (max abs diff within 1e-3);
#   2. native CPU: burn ndarray vs ONNX Runtime vs PyTorch eager, 2 threads
#      each, interleaved (bench/onnx/native.py);
#   3. headless Chromium: the npm package (wasm CPU, WebGPU) vs
#      onnxruntime-web (wasm with SIMD on 1 and 2 threads, WebGPU)
#      (bench/onnx/web/browser.mjs);
#   4. the tables into docs/benchmarks.md (bench/onnx/report.py).
# Expects the npm package in pkg/ (the Makefile target builds it first).
#
# Environment: WEIGHTS, SIZES (native and wasm, default 256x256,512x512),
# REPEATS (native, default 7), WEB_REPEATS (wasm, default 5), WEBGPU_SIZES
# (default 256x256), WEBGPU_REPEATS (default 2), CONFIGS (browser, default
# wasm-1t,wasm-2t,webgpu), THREADS (native, default 2), REALDENOISE_BIN,
# RESULTS (default bench/onnx/out), NOTE (a sentence for the tables),
# PAUSE_CMD / RESUME_CMD (run before / after the timed parts, e.g. to pause
# other work on the machine; RESUME_CMD also runs if the script fails).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/realdenoise/target}"

SIZES="${SIZES:-256x256,512x512}"
REPEATS="${REPEATS:-7}"
WEB_REPEATS="${WEB_REPEATS:-5}"
WEBGPU_SIZES="${WEBGPU_SIZES:-256x256}"
WEBGPU_REPEATS="${WEBGPU_REPEATS:-2}"
CONFIGS="${CONFIGS:-wasm-1t,wasm-2t,webgpu}"
THREADS="${THREADS:-2}"
RESULTS="${RESULTS:-bench/onnx/out}"
if [ -z "${WEIGHTS:-}" ]; then
    if [ -f weights/realdenoise.rdnz ]; then WEIGHTS=weights/realdenoise.rdnz; else WEIGHTS=weights/realdenoise-untrained.rdnz; fi
fi

if [ -z "${REALDENOISE_BIN:-}" ]; then
    cargo build --release -p realdenoise-cli
    REALDENOISE_BIN="$CARGO_TARGET_DIR/release/realdenoise"
fi
[ -f pkg/realdenoise.js ] || { echo "bench-onnx: pkg/ is missing; run make pkg" >&2; exit 1; }
bash bench/onnx/setup.sh
npm --prefix bench/onnx/web install --no-audit --no-fund --silent
dpkg -s chromium >/dev/null 2>&1 || { sudo_cmd=$( [ "$(id -u)" -eq 0 ] || echo sudo ); $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null; }
PY=bench/onnx/.venv/bin/python
mkdir -p "$RESULTS"

# ONNX files per size: the timed sizes, the WebGPU sizes and the reference's 64x96 (HEIGHTxWIDTH).
export_sizes="64x96"
for size in ${SIZES//,/ } ${WEBGPU_SIZES//,/ }; do
    width="${size%%[xX]*}"; height="${size##*[xX]}"
    case ",$export_sizes," in *",${height}x${width},"*) ;; *) export_sizes="$export_sizes,${height}x${width}" ;; esac
done

echo "== 1. export to ONNX and check ONNX Runtime against burn"
"$REALDENOISE_BIN" bench --reference-dump "$RESULTS/reference" --weights "$WEIGHTS"
"$PY" bench/onnx/export.py --weights "$WEIGHTS" --out "$RESULTS" --sizes "$export_sizes" --reference "$RESULTS/reference" --json "$RESULTS/check.json"

if [ -n "${PAUSE_CMD:-}" ]; then
    trap 'bash -c "${RESUME_CMD:-true}"' EXIT
    bash -c "$PAUSE_CMD"
fi
echo "== 2. native CPU (load $(cut -d' ' -f1-3 /proc/loadavg))"
"$PY" bench/onnx/native.py --bin "$REALDENOISE_BIN" --weights "$WEIGHTS" --onnx-dir "$RESULTS" --sizes "$SIZES" \
    --repeats "$REPEATS" --threads "$THREADS" --json "$RESULTS/native.json" > "$RESULTS/native.log"
grep round "$RESULTS/native.log"

echo "== 3. headless Chromium (load $(cut -d' ' -f1-3 /proc/loadavg))"
SIZES="$SIZES" REPEATS="$WEB_REPEATS" WEBGPU_SIZES="$WEBGPU_SIZES" WEBGPU_REPEATS="$WEBGPU_REPEATS" CONFIGS="$CONFIGS" \
    node bench/onnx/web/browser.mjs --json "$RESULTS/browser.json"
if [ -n "${PAUSE_CMD:-}" ]; then
    bash -c "${RESUME_CMD:-true}"
    trap - EXIT
fi

echo "== 4. docs/benchmarks.md"
"$PY" bench/onnx/report.py --check "$RESULTS/check.json" --native "$RESULTS/native.json" --browser "$RESULTS/browser.json" \
    --doc docs/benchmarks.md --note "${NOTE:-}" \
    --command "$(printf '%q ' env SIZES="$SIZES" REPEATS="$REPEATS" WEB_REPEATS="$WEB_REPEATS" WEBGPU_SIZES="$WEBGPU_SIZES" WEBGPU_REPEATS="$WEBGPU_REPEATS" bash bench/onnx/run.sh | sed 's/ $//')"
