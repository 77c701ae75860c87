set -u
# Thirty-eighth session, call 3: CUDA graphs on by default (LORA4J_CUDA_GRAPHS unset; one group
# of ranks only; capturing stops once 16 graphs were evicted). carry [".device"] (packed from this
# tree). 1) build, every ctest binary but test_realwidth_cuda with LORA4J_REQUIRE_GPU=1, the Java
# GPU tests and the demo on the GPU; 2) `lora4j train` at 4 x 2048 without recompute and with
# attention recompute offloaded, beside bench_cuda and the reference stack (STEPS="cli compare");
# 3) `lora4j train` on rows of random length (4x2048-padded: a new shape almost every batch) with
# graphs on and off, with the engine's graph counts.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w3; mkdir -p $W
export OUT=/tmp/o3a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 250 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
export OUT=/tmp/o3b; mkdir -p $OUT
STEPS="cli compare" CLI_SETTINGS=4x2048,4x2048-attention-offload timeout 230 bash scripts/gpu/run.sh > $W/cli-run.log 2>&1
echo "cli compare rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/cli && tar -C $W/cli -xzf $OUT/logs.tgz 2>/dev/null
cp $OUT/*.jsonl $OUT/*.json $W/cli/ 2>/dev/null
J=/tmp/lora4j-jre/bin/java
for g in 1 0; do
  mkdir -p $W/padded-g$g
  LORA4J_CUDA_GRAPHS=$g LORA4J_CUDA_GRAPHS_STATS=$W/padded-g$g/graph-stats.json CLI_RUN_TIMEOUT_S=70 \
    timeout 80 python3 benchmarks/cli_bench.py $J .device/lora4j-cli.jar /tmp/lora4j-cli/m7b /tmp/lora4j-cli \
    4x2048-padded > $W/padded-g$g/cli_bench.jsonl 2>&1
  echo "padded graphs=$g rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  cp /tmp/lora4j-cli/cli-*.log $W/padded-g$g/ 2>/dev/null
done
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$W/suite/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped|Not Run' $T | cut -c1-110
grep -a "FAIL" $T | head -8 | cut -c1-200
grep -a "graphs captured\|16 keys captured" $T | cut -c1-220
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $W/suite/java-summary.log
grep -a "steps\|eval loss" $W/suite/demo-cuda.log | tail -2 | cut -c1-200
grep -a "FAIL\|failed" $W/cli-run.log | head -5
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' $W/cli-run.log | head -24
for g in 1 0; do echo "== padded graphs=$g"; cut -c1-400 $W/padded-g$g/cli_bench.jsonl | tail -2; cat $W/padded-g$g/graph-stats.json 2>/dev/null | tail -2; done
echo "total $(( $(date +%s) - T_START )) s"
