set -u
export OUT
# gpu-next (fp8-lo + attn-fwd-pipe): build + fast tests, bench A/B, attention op A/B
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_gemm_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_cublaslt_decls_cuda" timeout 260 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
B=native/build-gpu
for v in default qkbf16 pipe0 default; do
  unset LORA4J_QK_LO LORA4J_ATTN_FWD_PIPELINE
  [ $v = qkbf16 ] && export LORA4J_QK_LO=bf16
  [ $v = pipe0 ] && export LORA4J_ATTN_FWD_PIPELINE=0
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 80 $B/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done
unset LORA4J_QK_LO LORA4J_ATTN_FWD_PIPELINE
for v in 1 0; do
  LORA4J_ATTN_FWD_PIPELINE=$v LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd 2>&1 | sed "s/^/pipe=$v /" >> /tmp/ops.log
done
cp /tmp/run.log /tmp/ab.log /tmp/ops.log /tmp/tests-fast.log $OUT/ 2>/dev/null
grep -a "FAIL\|rc=\|Passed\|Failed\|failure" /tmp/run.log /tmp/tests-fast.log | grep -v " PASS" | cut -c1-300 | head -40
grep -a "e4m3\|lo8\|pipelin" /tmp/tests-fast.log | cut -c1-200 | head -30
cat /tmp/ab.log
grep -a "attention" /tmp/ops.log | cut -c1-220
