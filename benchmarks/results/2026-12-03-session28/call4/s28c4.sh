set -u
# Twenty-eighth session, call 4 (main 453173f): the whole GPU suite on the final kernels (every
# ctest binary with LORA4J_REQUIRE_GPU=1, the 7B real-width cases among them; the Java GPU tests
# and the demo on the GPU). The last whole-suite run was at 14c599e, before the staged forward
# output, the longest-first order and the backward's dQ first.
T_START=$(date +%s)
REAL_OUT=$OUT
export OUT=/tmp/o4; mkdir -p $OUT
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 timeout 420 bash scripts/gpu/run.sh > /tmp/run4.log 2>&1
echo "build test java rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum4.log
W=/tmp/w4; mkdir -p $W; cp /tmp/run4.log /tmp/sum4.log $W/
tar -C $OUT -xzf $OUT/logs.tgz 2>/dev/null
for f in tests.log java-summary.log demo-cuda.log; do cp $OUT/$f $W/ 2>/dev/null; find $OUT -name $f -exec cp {} $W/ \; 2>/dev/null; done
grep -aE 'tests passed|tests failed|\*\*\*Failed|Passed +[0-9.]+ sec|Skipped|Not Run' $W/tests.log > $W/ctest-summary.txt 2>/dev/null
tar -C $W -czf $REAL_OUT/logs.tgz .
cat /tmp/sum4.log
cat $W/ctest-summary.txt | cut -c1-110
cat $W/java-summary.log 2>/dev/null | tail -8
grep -a "steps\|eval loss\|skipped" $W/demo-cuda.log 2>/dev/null | tail -3 | cut -c1-200
tail -15 /tmp/run4.log | cut -c1-200
echo "total $(( $(date +%s) - T_START )) s"
