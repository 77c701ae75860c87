#!/usr/bin/env bash
# The device tool copies the work tree (tracked files and untracked ones git does not ignore)
# plus the folders named in carry, 64 MiB at most. The tracked tree (~46 MiB in the thirty-fifth
# session, 9.4 MiB of it raw logs under benchmarks/results, the larger ones gzip-compressed) and
# the packed Java runtime and jars in .device (~23 MB, 38 MB with the JMH jar) no longer fit
# together, so before a call that carries .device:
#   scripts/gpu/aside.sh out [KEEP ...]   # moves benchmarks/results/* out of the tree, except the
#                                         # entries named (the session's own folder, with the call's
#                                         # script), and .device/benchmarks.jar unless KEEP_JMH=1
#                                         # (only STEPS=ops' JMH run needs it); prints what the
#                                         # call will copy
#   scripts/gpu/aside.sh back             # puts them back (refuses to overwrite anything)
# Nothing is deleted: the entries wait in $LORA4J_ASIDE (/tmp/lora4j-aside by default), and
# `git status` shows them as deleted until `back`.
set -euo pipefail
cd "$(dirname "$0")/../.."
ASIDE=${LORA4J_ASIDE:-/tmp/lora4j-aside}
case "${1:-}" in
  out)
    shift
    if [ -e "$ASIDE" ] && [ -n "$(ls -A "$ASIDE" 2>/dev/null)" ]; then
      echo "aside: $ASIDE is not empty (run 'scripts/gpu/aside.sh back' first)" >&2; exit 1
    fi
    mkdir -p "$ASIDE/results"
    for entry in benchmarks/results/*; do
      name=$(basename "$entry") keep=0
      for k in "$@"; do [ "$name" = "$(basename "$k")" ] && keep=1; done  # a name or its path
      [ "$keep" = 1 ] || mv "$entry" "$ASIDE/results/"
    done
    if [ "${KEEP_JMH:-0}" != 1 ] && [ -f .device/benchmarks.jar ]; then
      mv .device/benchmarks.jar "$ASIDE/benchmarks.jar"
    fi
    # What the call copies: the tree's files that exist, plus .device and .gpu where present.
    python3 - <<'PY'
import os, subprocess
files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], check=True,
                       capture_output=True).stdout.decode().split("\0")
tree = sum(os.path.getsize(f) for f in files if f and os.path.isfile(f))
extra = 0
for d in (".device", ".gpu"):
    for root, _, names in os.walk(d):
        extra += sum(os.path.getsize(os.path.join(root, n)) for n in names)
total = tree + extra
print(f"aside: tree {tree / 2**20:.1f} MiB + .device/.gpu {extra / 2**20:.1f} MiB = "
      f"{total / 2**20:.1f} MiB of the device tool's 64")
PY
    ;;
  back)
    [ -d "$ASIDE" ] || { echo "aside: nothing in $ASIDE" >&2; exit 1; }
    if [ -d "$ASIDE/results" ]; then
      for entry in "$ASIDE"/results/*; do
        [ -e "$entry" ] || continue
        name=$(basename "$entry")
        if [ -e "benchmarks/results/$name" ]; then
          echo "aside: benchmarks/results/$name exists; left in $ASIDE/results" >&2; exit 1
        fi
        mv "$entry" benchmarks/results/
      done
      rmdir "$ASIDE/results"
    fi
    if [ -f "$ASIDE/benchmarks.jar" ]; then
      [ -e .device/benchmarks.jar ] || mv "$ASIDE/benchmarks.jar" .device/benchmarks.jar
    fi
    rmdir "$ASIDE" 2>/dev/null || echo "aside: $ASIDE still holds: $(ls -A "$ASIDE")" >&2
    ;;
  *)
    echo "usage: scripts/gpu/aside.sh out [KEEP ...] | back" >&2; exit 2 ;;
esac
