#!/usr/bin/env bash
# Builds .gpu/diag/attention_sm90.cu (ignored by git) for s55c3.sh: main's attention_sm90.cu with
# forms-f16.patch applied (the timing and trial forms 1-7; not for main). From the root.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
tmp=$(mktemp -d)
mkdir -p "$tmp/native/src/cuda/kernels" .gpu/diag
cp native/src/cuda/kernels/attention_sm90.cu "$tmp/native/src/cuda/kernels/"
(cd "$tmp" && git init -q && git apply "$OLDPWD/benchmarks/results/2026-12-06-session55/call3/forms-f16.patch")
cp "$tmp/native/src/cuda/kernels/attention_sm90.cu" .gpu/diag/attention_sm90.cu
rm -rf "$tmp"
grep -c "defer-f16" .gpu/diag/attention_sm90.cu | sed 's/^/prep: defer-f16 named on lines: /'
