set -u
# Written in the thirty-eighth session for the next one's first GPU call. Before it, on the build
# machine: `git apply benchmarks/results/2026-12-04-session38/next/opt-refresh.patch` (the
# optimizer's refresh of the LoRA copies as a CUDA graph, with test_graphs_cuda.optimizer_refresh;
# written and built here, never run on a GPU), `mvn -B -ntp -q -DskipTests -DskipNativeTests=true
# package`, `bash scripts/gpu/pack-java.sh`, `scripts/gpu/aside.sh out <session folder>`; carry
# [".device"]. 1) build, every ctest binary but test_realwidth_cuda with LORA4J_REQUIRE_GPU=1 (the
# capture-begin error path of 455a9a1 and the patch's graph), the Java GPU tests and the demo;
# 2) `lora4j train` on short rows (cli_bench.py "short"), graphs off and on alternately: the
# breakdown's "optimizer" ms a step is the patch's measure (2.6-3.1 ms with the refresh as
# launches, thirty-eighth session call5; predicted ~1 ms with it as a graph: ~0.5 ms of AdamW,
# norm and conversion bytes plus two synchronizations).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w1; mkdir -p $W
export OUT=/tmp/o1a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 260 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
mkdir -p /tmp/lora4j-cli
$J --enable-native-access=ALL-UNNAMED -jar .device/lora4j-cli.jar init-model \
  --config benchmarks/reference/mistral-7b-bench-config.json --output /tmp/lora4j-cli/m7b > $W/init.log 2>&1
i=0
for g in 0 1 0 1; do
  i=$((i+1)); d=$W/run$i-short-g$g; mkdir -p $d
  LORA4J_CUDA_GRAPHS=$g LORA4J_CUDA_GRAPHS_STATS=$d/graph-stats.json CLI_RUN_TIMEOUT_S=60 \
    timeout 130 python3 benchmarks/cli_bench.py $J .device/lora4j-cli.jar /tmp/lora4j-cli/m7b /tmp/lora4j-cli \
    short > $d/cli_bench.jsonl 2>&1
  echo "run $i short graphs=$g rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  cp /tmp/lora4j-cli/cli-*.log $d/ 2>/dev/null
done
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -8 | cut -c1-200
grep -a "optimizer step\|optimizer refresh" $T | cut -c1-160
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for d in $W/run*; do
  echo "== $(basename $d)"
  python3 -c "
import json
for l in open('$d/cli_bench.jsonl'):
  if l.startswith('{'):
    x=json.loads(l); print(x.get('setting'), x.get('tokens_per_s'), x.get('breakdown','')[50:160])"
  cat $d/graph-stats.json 2>/dev/null
done
echo "total $(( $(date +%s) - T_START )) s"
