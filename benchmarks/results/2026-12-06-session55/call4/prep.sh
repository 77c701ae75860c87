#!/usr/bin/env bash
# Builds .gpu/diag/tree (ignored by git) for s55c4.sh: each file forms-f16.patch touches, as main
# has it with the patch applied (the trial and timing forms 1-9, the pre-pass's |dO| buffer; not
# for main). Run from the root on the build machine, on a clean checkout of the patch's base.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
patch=benchmarks/results/2026-12-06-session55/call4/forms-f16.patch
tmp=$(mktemp -d)
files=$(grep '^+++ b/' "$patch" | sed 's#^+++ b/##')
for f in $files; do mkdir -p "$tmp/$(dirname "$f")"; cp "$f" "$tmp/$f"; done
(cd "$tmp" && git init -q && git apply "$OLDPWD/$patch")
rm -rf .gpu/diag/tree
for f in $files; do mkdir -p ".gpu/diag/tree/$(dirname "$f")"; cp "$tmp/$f" ".gpu/diag/tree/$f"; done
rm -rf "$tmp"
echo "prep: $(echo $files | wc -w) files in .gpu/diag/tree"
