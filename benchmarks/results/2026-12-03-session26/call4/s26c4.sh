set -u
# Twenty-sixth session, call 4: main 14c599e (the fused gate/up forward on by default) through the
# whole GPU suite: every ctest binary with LORA4J_REQUIRE_GPU=1 (the real-width cases included),
# the Java GPU tests (GoldenTest, CudaEngineTest on cuda:0) and the demo on the GPU, from the jar.
T_START=$(date +%s)
REAL_OUT=$OUT
export OUT=/tmp/o4; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 timeout ${LIM:-540} bash scripts/gpu/run.sh > $OUT/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" > $OUT/sum.log
tar -C $OUT -czf $REAL_OUT/logs.tgz .
cp $OUT/sum.log $REAL_OUT/
cat $OUT/sum.log
grep -a "Passed\|Failed\|Not Run\|tests passed" $OUT/ctest.log | cut -c1-110
grep -ac "SKIP" $OUT/tests.log
grep -a "FAIL" $OUT/tests.log | cut -c1-200 | head -10
cat $OUT/java-summary.log 2>/dev/null | tail -12
grep -a "final\|loss\|skipped\|Exception" $OUT/demo-cuda.log | tail -6
tail -4 $OUT/run.log
