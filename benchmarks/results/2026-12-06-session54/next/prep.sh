#!/usr/bin/env bash
# Builds .gpu/diag/attention_sm90.cu (ignored by git, so a new checkout lacks it) for s54c2.sh,
# s54c2m.sh and s54c2s.sh: main's attention_sm90.cu with next/defer-bulk-forms.patch applied (the
# deferred forms, the timing forms and form 6 defer-bulk; not for main). Run from the root, on
# the build machine, before the call (carry .gpu; s54c2.sh also needs .device and aside.sh out).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
tmp=$(mktemp -d)
mkdir -p "$tmp/native/src/cuda/kernels" .gpu/diag
cp native/src/cuda/kernels/attention_sm90.cu "$tmp/native/src/cuda/kernels/"
patch=$PWD/benchmarks/results/2026-12-06-session54/next/defer-bulk-forms.patch
(cd "$tmp" && git init -q && git apply "$patch")
cp "$tmp/native/src/cuda/kernels/attention_sm90.cu" .gpu/diag/attention_sm90.cu
rm -rf "$tmp"
grep -c "defer-bulk" .gpu/diag/attention_sm90.cu | sed 's/^/prep: defer-bulk named /'
