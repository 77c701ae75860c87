#!/usr/bin/env bash
# The CPU engine at Mistral-7B v0.3's widths against an independent float64 computation: builds
# test_realwidth_cpu, has it write its model, adapter and batch (LORA4J_REALWIDTH_DUMP, ~1 GB in
# a temporary folder), and runs native/tests/realwidth_reference.py, which computes the loss,
# logits and every LoRA gradient with torch in float64 and compares them with the numbers the
# test holds the engine to (java/src/test/resources/realwidth/cpu-7b-1layer.txt). Needs torch for
# the system's Python 3 (on Debian: apt-get install python3-torch, which this script runs when
# torch is missing and it may). Not part of scripts/test.sh: torch and the dump add ~5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch >/dev/null
  else
    echo "check-realwidth: torch is missing for $PY (Debian: apt-get install python3-torch)" >&2
    exit 2
  fi
fi
BUILD=${REALWIDTH_BUILD:-native/build-realwidth}
cmake -S native -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLORA4J_CUDA=OFF >/dev/null
cmake --build "$BUILD" --parallel 2 --target test_realwidth_cpu >/dev/null
DUMP=$(mktemp -d)
trap 'rm -rf "$DUMP"' EXIT
(cd "$BUILD" && LORA4J_REALWIDTH_DUMP="$DUMP" ./test_realwidth_cpu)
"$PY" native/tests/realwidth_reference.py "$DUMP"
