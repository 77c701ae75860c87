set -u
# Thirty-seventh session, call 3 (main f4457cc: the residual stream in bf16 by default): every
# ctest binary but test_realwidth_cuda with LORA4J_REQUIRE_GPU=1 (the real-width cases ran with
# the bf16 stream in call2: 0 failures), the Java GPU tests and the demo on the GPU, then the
# user's path at both 4 x 2048 rows (`lora4j train` without recompute, and with --recompute
# attention --offload-checkpoints) beside the engine benchmark and the reference stack in this
# call (the README table). carry [".device"] (scripts/gpu/pack-java.sh), timeout ~590 s;
# scripts/gpu/aside.sh out 2026-12-04-session37 before, aside.sh back after.
# Prediction from call2's pairs: ~0.5-1.5% faster than the thirty-sixth session's 1.53x / 1.74x
# (inside the calls' ~2% spread), 4 GiB less without recompute (54.1 -> ~50 GiB).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w3; mkdir -p $W
export OUT=/tmp/o3a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 300 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
export OUT=/tmp/o3b; mkdir -p $OUT
STEPS="cli compare" CUDA_ARCHS=90 CLI_SETTINGS=4x2048,4x2048-attention-offload timeout $(( 585 - ($(date +%s) - T_START) )) bash scripts/gpu/run.sh > $W/cli-run.log 2>&1
echo "cli compare rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/cli && tar -C $W/cli -xzf $OUT/logs.tgz 2>/dev/null
cp $OUT/*.jsonl $OUT/*.json $W/cli/ 2>/dev/null
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$(find $W/suite -name tests.log | head -1)
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped|Not Run' $T | cut -c1-110
grep -a "\[golden\] hd128 lora grads\|hd128 recompute .*bits" $T 2>/dev/null | head -8 | cut -c1-140
grep -a "FAIL" $T | head -8 | cut -c1-150
find $W/suite -name java-summary.log -exec tail -6 {} \;
find $W/suite -name demo-cuda.log -exec sh -c 'grep -a "steps\|eval loss\|skipped" "$1" | tail -3 | cut -c1-200' _ {} \;
tail -4 $W/suite-run.log | cut -c1-200
grep -a "FAIL\|failed" $W/cli-run.log | head -5
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' $W/cli-run.log | head -24
echo "total $(( $(date +%s) - T_START )) s"
