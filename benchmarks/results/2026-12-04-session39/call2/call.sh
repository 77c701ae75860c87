set -u
# Thirty-ninth session, call 2: the optimizer's refresh copies in one launch (copy2d_batched) and
# metrics.jsonl kept open. 1) build, every ctest binary but test_realwidth_cuda with
# LORA4J_REQUIRE_GPU=1 (test_ops_cuda's copy2d_batched against the host, test_engine_cuda's
# refresh_batch: one launch vs one call per copy, parameters and logits bitwise), the Java GPU
# tests; 2) `lora4j train` on short rows (cli_bench.py "short", graphs on), LORA4J_REFRESH_BATCH
# 0 and 1 alternately: the breakdown's "optimizer" ms is the measure (2.3-2.5 ms in call 1;
# predicted ~0.7 with the table), "listeners" against call 1's 1.0-1.3 ms (predicted ~0.7).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w2; mkdir -p $W
export OUT=/tmp/o2a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 280 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
J=/tmp/lora4j-jre/bin/java
[ -x $J ] || { rm -rf /tmp/lora4j-jre && tar -C /tmp -xJf .device/jre.tar.xz; }
mkdir -p /tmp/lora4j-cli
$J --enable-native-access=ALL-UNNAMED -jar .device/lora4j-cli.jar init-model \
  --config benchmarks/reference/mistral-7b-bench-config.json --output /tmp/lora4j-cli/m7b > $W/init.log 2>&1
i=0
for rb in 0 1 0 1; do
  i=$((i+1)); d=$W/run$i-short-rb$rb; mkdir -p $d
  LORA4J_REFRESH_BATCH=$rb CLI_RUN_TIMEOUT_S=60 \
    timeout 130 python3 benchmarks/cli_bench.py $J .device/lora4j-cli.jar /tmp/lora4j-cli/m7b /tmp/lora4j-cli \
    short > $d/cli_bench.jsonl 2>&1
  echo "run $i short refresh_batch=$rb rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  cp /tmp/lora4j-cli/cli-*.log $d/ 2>/dev/null
done
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -8 | cut -c1-200
grep -a "\[copy2d\]\|\[refresh batch\]" $T | cut -c1-150 | head -20
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
for d in $W/run*; do
  echo "== $(basename $d)"
  grep -h "time per optimizer step" $d/cli-*.log | sed 's/.*: //' | cut -c1-150
  python3 -c "
import json
for l in open('$d/cli_bench.jsonl'):
  if l.startswith('{'):
    x=json.loads(l); print(x.get('setting'), x.get('tokens_per_s'))"
done
echo "total $(( $(date +%s) - T_START )) s"
