set -u
T_START=$(date +%s)
export OUT
# main cddb9e9: fast tests, all real-width cases, then lora_dy cases under compute-sanitizer
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_gemm_cuda" timeout 200 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
cp /tmp/run.log /tmp/tests-fast.log $OUT/ 2>/dev/null
B=native/build-gpu
t0=$(date +%s)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 330 ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? in $(( $(date +%s) - t0 )) s" >> /tmp/realwidth.log)
cp /tmp/realwidth.log $OUT/
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck initcheck; do
  left=$(( 560 - $(date +%s) + T_START ))
  [ $left -lt 20 ] && { echo "cudasan $tool: no time left" >> /tmp/san.log; continue; }
  LORA4J_OPS_ONLY=lora_dy timeout $left $SAN --tool $tool --error-exitcode 1 $B/test_ops_cuda > $OUT/cudasan-$tool.log 2>&1
  echo "cudasan $tool rc=$?" >> /tmp/san.log
done
cp /tmp/san.log $OUT/
grep -a "FAIL\|rc=\|Failed\|failure\|what()" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -20
grep -a "Passed\|Failed" /tmp/tests-fast.log | tail -8
grep -a "worst of\|grads (max" /tmp/tests-fast.log | grep hd128 | cut -c1-150 | head -4
grep -a "FAIL\|rc=" /tmp/realwidth.log | tail -5; echo "realwidth PASS lines: $(grep -ac PASS /tmp/realwidth.log)"
cat /tmp/san.log; for t in memcheck racecheck initcheck; do tail -3 $OUT/cudasan-$t.log 2>/dev/null; done
