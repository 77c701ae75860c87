#!/usr/bin/env bash
# Builds the native core and its tests with AddressSanitizer and UndefinedBehaviorSanitizer
# (CPU backend) and runs them; any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${SANITIZE_BUILD:-native/build-sanitize}
cmake -S native -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLORA4J_SANITIZE=ON -DLORA4J_CUDA=OFF >/dev/null
cmake --build "$BUILD" --parallel 2 >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir "$BUILD" --output-on-failure
echo "sanitizers: native tests clean under ASan + UBSan"
