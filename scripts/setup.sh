#!/usr/bin/env bash
# Installs what building and testing realdenoise needs on a Debian machine
# with rustup. Idempotent: installs only what is missing.
set -euo pipefail

need_apt=()
# Vulkan software driver (lavapipe): lets the native wgpu backend run, and be
# tested, on machines without a GPU.
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers)

if ((${#need_apt[@]})); then
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
  echo "setup: installing ${need_apt[*]}"
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup" >&2; exit 1; }
echo "setup: ok"
