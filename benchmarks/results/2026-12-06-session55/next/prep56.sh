#!/usr/bin/env bash
# For s56c1.sh: .gpu/diag/tree (call4/prep.sh: the trial forms 1-9) and .gpu/main-ready/tree (each
# file late-f16-main.patch touches, as main has it with the patch applied). Both ignored by git.
# Run from the root on the build machine, on the main the patches were made against.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
bash benchmarks/results/2026-12-06-session55/call4/prep.sh
patch=benchmarks/results/2026-12-06-session55/next/late-f16-main.patch
tmp=$(mktemp -d)
files=$(grep '^+++ b/' "$patch" | sed 's#^+++ b/##')
for f in $files; do mkdir -p "$tmp/$(dirname "$f")"; cp "$f" "$tmp/$f"; done
(cd "$tmp" && git init -q && git apply "$OLDPWD/$patch")
rm -rf .gpu/main-ready/tree
for f in $files; do mkdir -p ".gpu/main-ready/tree/$(dirname "$f")"; cp "$tmp/$f" ".gpu/main-ready/tree/$f"; done
rm -rf "$tmp"
echo "prep56: $(echo $files | wc -w) files in .gpu/main-ready/tree"
