#!/usr/bin/env bash
# Runs realdenoise-train built with burn-tch (LibTorch), the fastest CPU
# training backend measured here (training/README.md, "Training-step
# throughput"). Idempotent setup, then the trainer with the given arguments:
#
#   training/tch.sh bench-step --backend ndarray,tch
#   training/tch.sh train --run runs/NAME --backend cpu-tch --minutes 60
#
# burn-tch 0.21 uses tch 0.22, which needs libtorch 2.9.0. It comes from the
# PyPI torch 2.9.0 wheel in a venv outside the clone (about 7 GB with its
# CUDA libraries, which libtorch_cpu links even for the CPU); nothing is
# downloaded at build or run time beyond that pip install.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/realdenoise/target}"
venv="${REALDENOISE_LIBTORCH_VENV:-$HOME/.cache/realdenoise/libtorch-2.9.0}"

if [ "$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)" != "2.9.0" ]; then
  echo "tch.sh: installing torch 2.9.0 into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch==2.9.0
fi
site="$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')"

# The whole workspace is selected so burn's features stay those of every
# other build (only burn-tch, tch and the training crate are added).
PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1 \
  cargo build --release --workspace --features realdenoise-training/tch >&2

libraries="$site/torch/lib"
for directory in "$site"/nvidia/*/lib; do libraries="$libraries:$directory"; done
LD_LIBRARY_PATH="$libraries${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$CARGO_TARGET_DIR/release/realdenoise-train" "$@"
