set -u
# Forty-second session, call 8: the final tree's remaining GPU tests (calls 4 and 7 ran
# test_ops_cuda and test_decode_cuda on it): build, every other ctest binary with
# LORA4J_REQUIRE_GPU=1, the Java GPU tests. Logs straight under $OUT (run.sh's), so that what ran
# comes back even if the call's time runs out.
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-E test_ops_cuda|test_decode_cuda" bash scripts/gpu/run.sh > $OUT/suite-run.log 2>&1
echo "rc=$?"
T=$OUT/tests.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' $T | cut -c1-110
grep -a "FAIL" $T | head -12 | cut -c1-200
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" $OUT/java-summary.log
tail -5 $OUT/suite-run.log
