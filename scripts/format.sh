#!/usr/bin/env bash
# Formats every C/C++/CUDA file with clang-format and every Java file with google-java-format.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/format-common.sh
format_tools
native_files | xargs clang-format -i
java_files | xargs -n 200 bash -c 'source scripts/format-common.sh; gjf --replace "$@"' _
echo "formatted $(native_files | wc -l) native and $(java_files | wc -l) Java files"
