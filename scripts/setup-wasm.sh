#!/usr/bin/env bash
# Tools for building the npm package (idempotent): the wasm32 target, the
# wasm-bindgen CLI at exactly the crate's version, and wasm-opt from npm
# `binaryen` (Debian's binaryen 108 produces a broken module).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  echo "setup-wasm: installing wasm-bindgen-cli $version"
  # Not --locked: one of its pinned dependencies is missing from the registry.
  cargo install -q wasm-bindgen-cli --version "$version"
fi

if [ ! -x tools/node_modules/.bin/wasm-opt ]; then
  echo "setup-wasm: installing binaryen (wasm-opt) from npm"
  npm --prefix tools install --no-audit --no-fund --silent
fi
echo "setup-wasm: ok"
