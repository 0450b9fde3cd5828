#!/usr/bin/env bash
# Runs realdenoise-train built with burn-tch (LibTorch), the fastest CPU
# training backend measured here (training/README.md, "Training-step
# throughput"). Idempotent setup, then the trainer with the given arguments:
#
#   training/tch.sh bench-step --backend ndarray,tch
#   training/tch.sh train --run runs/NAME --backend cpu-tch --minutes 60
#   training/tch.sh            (build only; prints the binary's path)
#
# burn-tch 0.21 uses tch 0.22, written for libtorch 2.9.0; it builds and
# runs against libtorch 2.11.0 with its version check bypassed. 2.11.0 is
# the version a lent GPU machine's PyTorch has, so the binary built here runs
# there on that machine's own libtorch (`train --backend cuda-tch`,
# training/gpu/chunk.sh). It comes from the PyPI torch 2.11.0 wheel in a venv
# outside the clone (about 5 GB with its CUDA 13 libraries, which
# libtorch_cuda links); nothing is downloaded at build or run time beyond
# that pip install.
#
# REALDENOISE_TRAIN_BIN=PATH runs that already-built trainer instead of
# building: a long job (proxy-runs.sh, a training run) then keeps one binary
# while the sources or the shared target directory change under it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/realdenoise/target}"
version=2.11.0
venv="${REALDENOISE_LIBTORCH_VENV:-$HOME/.cache/realdenoise/torch-$version}"
trainer="${REALDENOISE_TRAIN_BIN:-$CARGO_TARGET_DIR/release/realdenoise-train}"

if [ "$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)" != "$version" ]; then
  echo "tch.sh: installing torch $version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "torch==$version"
fi
site="$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')"

if [ -z "${REALDENOISE_TRAIN_BIN:-}" ]; then
  # `cargo test --no-run` over the whole workspace builds the trainer with the
  # features `make test` resolves (dev-dependencies included), so it shares
  # what it can with `make test`'s artifacts. burn-tch still adds features to
  # crates below burn, so the first build recompiles most of burn (35 minutes
  # here, with a browser test running beside it); later ones are incremental.
  PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1 \
    cargo test --release --workspace --features realdenoise-training/tch --no-run >&2
fi

# Without arguments: build only, and print where the binary is.
if [ $# -eq 0 ]; then
  echo "$trainer"
  exit 0
fi
[ -x "$trainer" ] || { echo "tch.sh: no trainer at $trainer" >&2; exit 1; }
libraries="$site/torch/lib"
for directory in "$site"/nvidia/*/lib; do libraries="$libraries:$directory"; done
LD_LIBRARY_PATH="$libraries${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$trainer" "$@"
