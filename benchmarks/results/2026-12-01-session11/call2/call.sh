set -u
T_START=$(date +%s)
export OUT
left() { echo $(( 585 - $(date +%s) + T_START )); }
# grouped dLoRA_A + lora_dy_pair row shares per wave: tests, sanitizer, a real-width case, A/B, per-op times
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda" timeout 200 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
cp /tmp/run.log /tmp/tests-fast.log $OUT/ 2>/dev/null
B=native/build-gpu
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck initcheck; do
  LORA4J_OPS_ONLY=lora_dy timeout 60 $SAN --tool $tool --error-exitcode 1 $B/test_ops_cuda > /tmp/san-$tool.log 2>&1
  echo "cudasan $tool rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/san.log
done
tail -2 /tmp/san-racecheck.log >> /tmp/san.log; cp /tmp/san.log $OUT/
(cd $B && LORA4J_REALWIDTH_CASES="2x512 packed" LORA4J_REQUIRE_GPU=1 timeout 80 ./test_realwidth_cuda > /tmp/rw.log 2>&1; echo "realwidth rc=$?" >> /tmp/rw.log)
cp /tmp/rw.log $OUT/
for v in default gda0 slots256 default gda0 slots256; do
  [ $(left) -lt 150 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  unset LORA4J_LORA_GROUP_DA LORA4J_LORA_DY_SLOTS
  [ $v = gda0 ] && export LORA4J_LORA_GROUP_DA=0
  [ $v = slots256 ] && export LORA4J_LORA_DY_SLOTS=256
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 80 $B/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
  cp /tmp/ab.log $OUT/
done
unset LORA4J_LORA_GROUP_DA LORA4J_LORA_DY_SLOTS
if [ $(left) -gt 75 ]; then
  LORA4J_PHASE_TIMES=/tmp/phases.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout $(( $(left) - 5 )) $B/bench_cuda > /tmp/bench_phases.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bench_phases.jsonl /tmp/phases.jsonl > /tmp/phases.txt 2>&1
  cp /tmp/phases.txt /tmp/phases.jsonl /tmp/bench_phases.jsonl $OUT/ 2>/dev/null
fi
grep -a "FAIL\|rc=\|Failed\|failure\|what()" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -20
grep -a "Passed\|Failed" /tmp/tests-fast.log | tail -6
grep -a "add_f32\|slots" /tmp/tests-fast.log | cut -c1-150 | head -12
grep -a "FAIL" /tmp/tests-fast.log | cut -c1-200 | head
grep -a "worst of\|grads (max" /tmp/tests-fast.log | grep hd128 | cut -c1-150 | head -4
cat /tmp/san.log
grep -a "FAIL\|rc=" /tmp/rw.log | tail -5; echo "realwidth PASS lines: $(grep -ac PASS /tmp/rw.log)"
cut -c1-220 /tmp/ab.log
head -12 /tmp/phases.txt 2>/dev/null; grep -A14 "recompute" /tmp/phases.txt 2>/dev/null | head -14
echo "total $(( $(date +%s) - T_START )) s"
