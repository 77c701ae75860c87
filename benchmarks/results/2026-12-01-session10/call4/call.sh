set -u
export OUT
# fp8-lo: build, test_engine_cuda (the e4m3-vs-bf16 check by distance to the reference), then the real-width test
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_engine_cuda|test_gemm_cuda" timeout 200 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-engine.log 2>/dev/null
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 370 ctest -V -R test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$?" >> /tmp/realwidth.log)
cp /tmp/realwidth.log /tmp/run.log /tmp/tests-engine.log $OUT/ 2>/dev/null
grep -a "FAIL\|rc=\|Passed\|Failed\|failure\|what()" /tmp/run.log | cut -c1-300 | head -20
grep -a "q/k residue e4m3" /tmp/tests-engine.log | cut -c1-200
grep -a "FAIL\|realwidth\]\|rc=\|Passed\|Failed" /tmp/realwidth.log | cut -c1-200 | tail -14
grep -ac "PASS" /tmp/realwidth.log
