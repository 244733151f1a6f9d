#!/usr/bin/env bash
# Installs what modelconvert needs to build and to run its tests, from Debian packages and the
# npm lock file. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PKGS=(
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libfmt-dev libcli11-dev libyaml-cpp-dev libgtest-dev
  libopenblas-dev zlib1g-dev libicu-dev libcurl4-openssl-dev
  python3 python3-numpy python3-torch python3-sentencepiece python3-onnx time
  pybind11-dev python3-dev clang-14 libclang-rt-14-dev
)
# MC_DEPS=build: only what building the program needs (scripts/demo.sh), not the test clients.
if [ "${MC_DEPS:-all}" = build ]; then
  PKGS=(build-essential cmake ninja-build pkg-config nlohmann-json3-dev libfmt-dev libcli11-dev libyaml-cpp-dev
        libopenblas-dev zlib1g-dev libicu-dev libcurl4-openssl-dev python3)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node.js and npm may come from elsewhere than Debian (a newer node): only install when absent.
if [ "${MC_DEPS:-all}" != build ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Interop clients (llama.cpp through node-llama-cpp, a second GGUF parser) from the lock file.
if [ -f package-lock.json ] && [ "${MC_SKIP_NPM:-0}" != 1 ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    # onnxruntime-node's postinstall would download CUDA libraries; its CPU binaries ship in the package.
    ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
  fi
fi
