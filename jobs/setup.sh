#!/usr/bin/env bash
# Installs what tlens needs (Debian 12 packages, only the missing ones) and builds it.
#   bash jobs/setup.sh [BUILD_DIR] [extra cmake args...]
# Env: TLENS_APT=0 skips the package step (for machines without root/apt).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$here/build}
shift || true

pkgs=(build-essential cmake pkg-config git
      openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libcjson-dev libzstd-dev zstd libopenblas-dev
      python3 python3-numpy python3-torch)
# What only the test suite needs (jobs/test.sh sets TLENS_TEST_PACKAGES=1):
# python3-protobuf + protobuf-compiler, the independent reader of the TensorBoard event files; chromium,
# headless rendering of the SVG and HTML outputs; clang + libclang-rt-14-dev, the
# libFuzzer targets (tests/fuzz, TLENS_FUZZ=ON).
if [ "${TLENS_TEST_PACKAGES:-0}" = 1 ]; then
  pkgs+=(python3-protobuf protobuf-compiler chromium clang libclang-rt-14-dev)
fi
if [ "${TLENS_APT:-1}" != 0 ]; then
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/tlens" >&2
