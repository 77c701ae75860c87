set -u
# Thirty-eighth session, call 5: `lora4j train` on rows of random length (cli_bench.py
# 4x2048-padded: each batch right-padded to its longest row, so a new shape almost every step and
# every step eager with graphs on) with graphs off and on alternately, four runs (off, on, off,
# on), each with the engine's graph counts: call3 ran on then off once each (14,229 against
# 14,533 tokens/s). carry [".device"] (the jar packed at 57af41e's engine). First: build, and
# test_graphs_cuda and test_offload_cuda after their step helpers moved to tests/step_diff.h.
# Then the short rows the paired engine runs found graphs paying at (cli_bench.py's "short" group:
# 1 x 512 and 1 x 1024 without recompute) on the user's path, graphs off and on alternately.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w5; mkdir -p $W
export OUT=/tmp/o5a; mkdir -p $OUT
STEPS="build" CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
(cd native/build-gpu && LORA4J_REQUIRE_GPU=1 timeout 120 ctest -V -R "test_graphs_cuda|test_offload_cuda") > $W/ctest.log 2>&1
echo "ctest graphs+offload rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz
J=/tmp/lora4j-jre/bin/java
mkdir -p /tmp/lora4j-cli
$J --enable-native-access=ALL-UNNAMED -jar .device/lora4j-cli.jar init-model \
  --config benchmarks/reference/mistral-7b-bench-config.json --output /tmp/lora4j-cli/m7b > $W/init.log 2>&1
echo "init-model rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
i=0
for set in 4x2048-padded short; do
  for g in 0 1 0 1; do
    i=$((i+1)); d=$W/run$i-$set-g$g; mkdir -p $d
    LORA4J_CUDA_GRAPHS=$g LORA4J_CUDA_GRAPHS_STATS=$d/graph-stats.json CLI_RUN_TIMEOUT_S=60 \
      timeout 130 python3 benchmarks/cli_bench.py $J .device/lora4j-cli.jar /tmp/lora4j-cli/m7b /tmp/lora4j-cli \
      $set > $d/cli_bench.jsonl 2>&1
    echo "run $i $set graphs=$g rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
    cp /tmp/lora4j-cli/cli-*.log $d/ 2>/dev/null
  done
done
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
grep -aE "tests passed|tests failed|\*\*\*Failed|failure\(s\)" $W/ctest.log | cut -c1-120
for d in $W/run*; do
  echo "== $(basename $d)"
  python3 -c "
import json
for l in open('$d/cli_bench.jsonl'):
  if l.startswith('{'):
    x=json.loads(l); print(x.get('setting'), x.get('tokens_per_s'), x.get('breakdown','')[50:150])"
  cat $d/graph-stats.json 2>/dev/null
done
echo "total $(( $(date +%s) - T_START )) s"
