#!/usr/bin/env bash
# Creates bench/onnx/.venv with the pinned requirements; idempotent: a venv
# whose installed packages already match requirements.txt is left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
echo "$want" > "$stamp"
"$venv/bin/python" -c 'import torch, onnxruntime, onnx; print(f"bench/onnx/.venv: torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}")'
