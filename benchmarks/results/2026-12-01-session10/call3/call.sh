set -u
export OUT
# fp8-lo (scale pointers 16-byte aligned): build + fast tests, bench A/B
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_gemm_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_cublaslt_decls_cuda" timeout 260 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
B=native/build-gpu
for v in default qkbf16 default qkbf16; do
  unset LORA4J_QK_LO
  [ $v = qkbf16 ] && export LORA4J_QK_LO=bf16
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 80 $B/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done
unset LORA4J_QK_LO
LORA4J_PHASE_TIMES=1 LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 80 $B/bench_cuda > /tmp/phases.txt 2>&1
if grep -q "100% tests passed" /tmp/run.log; then
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 330 ctest -V -R test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$?" >> /tmp/realwidth.log)
fi
cp /tmp/realwidth.log /tmp/run.log /tmp/ab.log /tmp/phases.txt /tmp/tests-fast.log $OUT/ 2>/dev/null
grep -a "FAIL\|rc=\|Passed\|Failed\|failure\|what()" /tmp/run.log /tmp/tests-fast.log | grep -v " PASS" | cut -c1-300 | head -30
grep -a "e4m3" /tmp/tests-fast.log | grep -v rmsnorm | cut -c1-200 | head -30
cat /tmp/ab.log
grep -a "q/k\|e4m3\|lo " /tmp/phases.txt | head
grep -a "FAIL\|realwidth\]\|rc=" /tmp/realwidth.log | cut -c1-200 | tail -12
