set -u
T_START=$(date +%s)
export OUT
left() { echo $(( 585 - $(date +%s) + T_START )); }
# lora_b_residual (o / down LoRA up-projection onto the residual stream): tests, sanitizer, a real-width case, A/B, per-op times
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden" timeout 200 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
cp /tmp/run.log $OUT/ 2>/dev/null; cp /tmp/tests-fast.log $OUT/tests.log
B=native/build-gpu
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck initcheck; do
  LORA4J_OPS_ONLY=lora_b timeout 60 $SAN --tool $tool --error-exitcode 1 $B/test_ops_cuda > /tmp/san-$tool.log 2>&1
  echo "cudasan lora_b $tool rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/san.log
  tail -2 /tmp/san-$tool.log >> /tmp/san.log
done
cp /tmp/san.log $OUT/
(cd $B && LORA4J_REALWIDTH_CASES="2x512 packed" LORA4J_REQUIRE_GPU=1 timeout 80 ./test_realwidth_cuda > /tmp/rw.log 2>&1; echo "realwidth rc=$?" >> /tmp/rw.log)
cp /tmp/rw.log $OUT/
for v in default gemm default gemm; do
  [ $(left) -lt 120 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  unset LORA4J_LORA_B_KERNEL
  [ $v = gemm ] && export LORA4J_LORA_B_KERNEL=0
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 80 $B/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
  cp /tmp/ab.log $OUT/
done
unset LORA4J_LORA_B_KERNEL
if [ $(left) -gt 75 ]; then
  LORA4J_PHASE_TIMES=/tmp/phases.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout $(( $(left) - 5 )) $B/bench_cuda > /tmp/bench_phases.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bench_phases.jsonl /tmp/phases.jsonl > /tmp/phases.txt 2>&1
  cp /tmp/phases.txt /tmp/phases.jsonl /tmp/bench_phases.jsonl $OUT/ 2>/dev/null
fi
grep -a "FAIL\|rc=\|Failed\|failure\|what()" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -20
grep -a "Passed\|Failed" /tmp/tests-fast.log | tail -4
grep -a "lora_b\]" /tmp/tests-fast.log | cut -c1-150 | head -14
grep -a "FAIL" /tmp/tests-fast.log | cut -c1-200 | head
grep -a "grads (max" /tmp/tests-fast.log | grep hd128 | cut -c1-150 | head -4
cat /tmp/san.log
grep -a "FAIL\|rc=" /tmp/rw.log | tail -5; echo "realwidth PASS lines: $(grep -ac PASS /tmp/rw.log)"
cut -c1-200 /tmp/ab.log
grep -a "lora_B forward\|ms per step" /tmp/phases.txt 2>/dev/null
echo "total $(( $(date +%s) - T_START )) s"
