#!/usr/bin/env bash
# The README's test command: installs what a fresh machine lacks (scripts/ensure-tools.sh: a JDK,
# Maven, CMake, g++, and Node.js with node-llama-cpp for the llama.cpp check of the GGUF export),
# then builds everything (Java, native core, CUDA backend where nvcc is, JNI glue) and runs every
# test: `mvn -B -ntp verify`, then the unit tests of the GPU benchmark scripts' parsing and
# command construction (benchmarks/test_ddp_bench.py, benchmarks/test_ab.py,
# benchmarks/test_phases.py, benchmarks/test_attention_compare.py, benchmarks/test_ncu_bytes.py,
# benchmarks/test_sass_mix.py; Python 3). Extra arguments go to Maven.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-tools.sh
mvn -B -ntp verify "$@"
python3 benchmarks/test_ddp_bench.py
python3 benchmarks/test_ab.py
python3 benchmarks/test_phases.py
python3 benchmarks/test_attention_compare.py
python3 benchmarks/test_ncu_bytes.py
python3 benchmarks/test_sass_mix.py
