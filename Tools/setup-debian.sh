#!/usr/bin/env bash
# Installs what QwenVK needs on a fresh Debian 12 machine that already has Swift 6:
# the Vulkan loader and headers, the CPU Vulkan driver (Mesa lavapipe) so that tests and the bundled
# tiny model run without a GPU, and the shader compiler used by Tools/build-shaders.py.
set -euo pipefail

packages=(
    libvulkan-dev          # loader + headers (CVulkan)
    mesa-vulkan-drivers    # lavapipe: a conformant Vulkan 1.3 device on the CPU
    glslc                  # GLSL → SPIR-V (Tools/build-shaders.py)
    glslang-tools glslang-dev libshaderc-dev
    spirv-tools            # spirv-val
    libpng-dev
    pkg-config
    python3
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
