#!/usr/bin/env bash
# Installs everything ckpt needs to build, test and run its main job on Debian bookworm.
# Idempotent; run as root. Packages come from Debian's archive only, npm packages with
# --ignore-scripts (no install step may download anything of its own).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
here=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  cmake ninja-build g++ pkg-config
  libboost-dev nlohmann-json3-dev libmsgpack-cxx-dev libcli11-dev libxxhash-dev
  libhdf5-dev libdnnl-dev ocl-icd-opencl-dev opencl-c-headers
  libonnx-dev libprotobuf-dev protobuf-compiler
  libminizip-dev libdeflate-dev libsodium-dev zlib1g-dev libbz2-dev liblzma-dev liblzf-dev libsimdjson-dev
  hdf5-filter-plugin hdf5-filter-plugin-blosc-serial
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libomp-dev
  dataset-fashion-mnist
  python3 python3-numpy python3-msgpack python3-h5py python3-onnx python3-torch python3-joblib
  python3-torchvision python3-sklearn
  libopenblas0-openmp python3-matplotlib
  time unzip ccache
  libsqlite3-dev sqlite3 postgresql libpq-dev
  libopenmpi-dev openmpi-bin
  chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Node.js may come from the machine image (with its own npm) rather than Debian; only ask
# Debian for it when there is none, since Debian's npm conflicts with a foreign nodejs.
if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm
fi

# ONNX Runtime for the onnx plugin's tests, pinned by tests/formats/onnx/node/package-lock.json.
# --ignore-scripts: the package ships its native library; no install step may fetch anything.
if [ ! -f "$here/tests/formats/onnx/node/node_modules/onnxruntime-node/package.json" ]; then
  (cd "$here/tests/formats/onnx/node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
# Hugging Face's GGUF parser for the gguf plugin's tests (an independent reader of the files ckpt
# writes), pinned by tests/formats/gguf/node/package-lock.json.
if [ ! -f "$here/tests/formats/gguf/node/node_modules/@huggingface/gguf/package.json" ]; then
  (cd "$here/tests/formats/gguf/node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
