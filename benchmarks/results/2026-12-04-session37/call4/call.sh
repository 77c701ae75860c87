set -u
# Thirty-seventh session, call 4: the residual stream back to fp32 by default (LORA4J_RESIDUAL=bf16
# opt-in) after call3's Java GPU test CudaEngineTest.sampleBatchesFollowTheCpuEngine measured the
# bf16 stream's loss 1.20e-3 from the CPU engine's against its 1.1e-3 bound (4.27e-4 with fp32).
# Every ctest binary but test_realwidth_cuda (run with both streams in calls 1-2) with
# LORA4J_REQUIRE_GPU=1, the Java GPU tests and the demo on the GPU. carry [".device"].
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w4; mkdir -p $W
export OUT=/tmp/o4a; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_realwidth_cuda" timeout 330 bash scripts/gpu/run.sh > $W/suite-run.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/suite && tar -C $W/suite -xzf $OUT/logs.tgz 2>/dev/null
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
T=$(find $W/suite -name tests.log | head -1)
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped|Not Run' $T | cut -c1-110
grep -a "\[golden\] hd128 lora grads\|hd128 (LORA4J_RESIDUAL=bf16) recompute .*bits" $T 2>/dev/null | head -8 | cut -c1-140
grep -a "FAIL" $T | head -8 | cut -c1-150
find $W/suite -name java-summary.log -exec sh -c 'grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" "$1"' _ {} \;
find $W/suite -name demo-cuda.log -exec sh -c 'grep -a "steps\|eval loss\|skipped" "$1" | tail -3 | cut -c1-200' _ {} \;
echo "total $(( $(date +%s) - T_START )) s"
