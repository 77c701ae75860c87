#!/usr/bin/env bash
# Fails (listing the files) when a C/C++/CUDA or Java file is not as scripts/format.sh leaves it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/format-common.sh
format_tools
bad=0
if ! native_files | xargs clang-format --dry-run -Werror 2>/tmp/lora4j-clang-format.txt; then
  # clang-format reports FILE:LINE:COL: error: ...; list each file once
  sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error.*/\1/p' /tmp/lora4j-clang-format.txt | sort -u | head -20
  bad=1
fi
unformatted=$(java_files | xargs -n 200 bash -c 'source scripts/format-common.sh; gjf --dry-run "$@"' _ || true)
if [ -n "$unformatted" ]; then
  echo "$unformatted" | head -20
  bad=1
fi
if [ $bad -ne 0 ]; then
  echo "formatting differs: run scripts/format.sh"
  exit 1
fi
echo "format: native and Java files as scripts/format.sh leaves them"
