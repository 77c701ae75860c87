#!/usr/bin/env bash
# Installs what building lora4j needs on a Debian/Ubuntu machine that lacks it: a JDK (17+),
# Maven, CMake, a C++ compiler and Python 3 (the benchmark scripts' tests); and, for the
# llama.cpp check of the GGUF export, Node.js and node-llama-cpp (below). Sourced by .ci/run and scripts/demo.sh.
need=()
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${need[@]}"
fi
# CMake finds the CUDA compiler through CUDACXX when it is not on the PATH.
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

# llama.cpp for the GGUF export test (GgufLlamaCppTest): node-llama-cpp 3.21.1 and its prebuilt
# CPU build of llama.cpp, installed from the lock file into scripts/llamacpp/node_modules (about
# 85 MB; npm's cache makes a reinstall quick). Needs Node.js 20 or later. scripts/demo.sh does not
# need it and sets LORA4J_NO_LLAMACPP=1.
if [ -z "${LORA4J_NO_LLAMACPP:-}" ]; then
  _lora4j_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  _node_major=0
  command -v node >/dev/null && _node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$_node_major" -lt 20 ] || ! command -v npm >/dev/null; then
    echo "installing: nodejs npm (Node.js 20 or later is needed for the llama.cpp check)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q nodejs npm
    _node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$_node_major" -lt 20 ]; then
      echo "warning: Node.js $(node --version 2>/dev/null) is older than 20: node-llama-cpp 3.21.1 needs 20 or later," \
        "and GgufLlamaCppTest will fail until a newer Node.js is installed" >&2
    fi
  fi
  _have=$(node -p 'require(process.argv[1]).version' \
    "$_lora4j_root/scripts/llamacpp/node_modules/node-llama-cpp/package.json" 2>/dev/null || true)
  if [ "$_have" != "3.21.1" ] || [ ! -d "$_lora4j_root/scripts/llamacpp/node_modules/@node-llama-cpp/linux-x64" ]; then
    echo "installing: node-llama-cpp 3.21.1 (llama.cpp, prebuilt for the CPU) into scripts/llamacpp"
    (cd "$_lora4j_root/scripts/llamacpp" && npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
  unset _lora4j_root _node_major _have
fi
