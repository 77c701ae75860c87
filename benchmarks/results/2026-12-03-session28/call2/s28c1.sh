set -u
# Prepared for the next session's first call (main 9f2f7cd or later): the checks the twenty-seventh
# session did not run after the backward's dQ first, then the user's path against the reference.
# Before it, here: mvn -B -q package -DskipTests && bash scripts/gpu/pack-java.sh, and move
# benchmarks/results and benchmarks/target/benchmarks.jar aside for the call so the tree and
# .device fit the 64 MiB carry (put them back after).
# 1. build, the GPU ctest suite (test_op_bench_cuda included), the attention / lora cases under
# compute-sanitizer (run.sh "cudasan"); 2. lora4j train at 4 x 2048 without recompute beside the
# engine and the reference stack (run.sh "cli compare", CLI_SETTINGS=4x2048).
T_START=$(date +%s)
REAL_OUT=$OUT
export OUT=/tmp/o1; mkdir -p $OUT
STEPS="build test cudasan" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 timeout 330 bash scripts/gpu/run.sh > /tmp/run1.log 2>&1
echo "build test cudasan rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum1.log
STEPS="cli compare" CLI_SETTINGS=4x2048 CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > /tmp/run2.log 2>&1
echo "cli compare rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum1.log
cp /tmp/run1.log /tmp/run2.log /tmp/sum1.log $REAL_OUT/
cp $OUT/logs*.tgz $REAL_OUT/ 2>/dev/null
cat /tmp/sum1.log
grep -a "tests passed\|Failed\|FAIL\|ERROR SUMMARY" /tmp/run1.log | head -20
grep -a "tokens/s\|train /\|^|" /tmp/run2.log | tail -20
