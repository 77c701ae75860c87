set -u
T_START=$(date +%s)
export OUT
# main 4829743: fast tests + cudasan (lora_dy, lora_b), then all real-width cases
STEPS="build test cudasan" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_gemm_cuda" timeout 330 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
cp /tmp/run.log /tmp/tests-fast.log $OUT/ 2>/dev/null
B=native/build-gpu
t0=$(date +%s)
left=$(( 585 - $(date +%s) + T_START ))
(cd $B && LORA4J_REQUIRE_GPU=1 timeout $left ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? in $(( $(date +%s) - t0 )) s" >> /tmp/realwidth.log)
cp /tmp/realwidth.log $OUT/
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|cudasan\|build ok" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -24
grep -a "Passed\|Failed" /tmp/tests-fast.log | tail -8
grep -a "FAIL\|rc=\|cpu reference\|failure" /tmp/realwidth.log | cut -c1-160 | tail -16; echo "realwidth PASS lines: $(grep -ac PASS /tmp/realwidth.log)"
