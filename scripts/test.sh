#!/usr/bin/env bash
# Runs the whole test suite. On a machine without a Vulkan driver it first installs Mesa's software
# Vulkan (lavapipe) and the X11 pieces the window test needs, so GPU tests render for real.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || need_pkgs+=(mesa-vulkan-drivers libvulkan1)
command -v Xvfb >/dev/null || need_pkgs+=(xvfb xauth)
command -v xdotool >/dev/null || need_pkgs+=(xdotool)
command -v import >/dev/null || need_pkgs+=(imagemagick)
for lib in libxcursor.so.1 libXi.so.6 libxkbcommon-x11.so.0 libX11-xcb.so.1 libXrandr.so.2; do
  ldconfig -p | grep -q "$lib" || { need_pkgs+=(libxcursor1 libxi6 libxkbcommon-x11-0 libx11-xcb1 libxrandr2); break; }
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing: ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# Never let wgpu fall back silently to GL: tests must run on Vulkan (lavapipe here, a GPU elsewhere).
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo test --locked "$@"
