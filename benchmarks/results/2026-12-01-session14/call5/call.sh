set -u
T_START=$(date +%s)
export OUT
# the generation checks by measured margin: test_engine_cuda and the Java GPU tests (GoldenTest) with the demo
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_engine_cuda" timeout 150 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/l1 && tar -C /tmp/l1 -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
cp /tmp/run.log /tmp/l1/tests.log $OUT/ 2>/dev/null
OUT=/tmp/jout STEPS="java" timeout 120 bash scripts/gpu/run.sh > /tmp/java-run.log 2>&1
echo "java run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/java-run.log
cp /tmp/java-run.log $OUT/
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -12
grep -a "Passed\|Failed" /tmp/l1/tests.log | tail -3
grep -a "greedy generation" /tmp/l1/tests.log | cut -c1-220 | head -14
grep -a "generate\|rc=\|tests successful\|tests failed\|tests skipped\|done:" $OUT/java-run.log | head -12
echo "total $(( $(date +%s) - T_START )) s"
