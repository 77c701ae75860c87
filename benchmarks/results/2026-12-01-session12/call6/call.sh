set -u
T_START=$(date +%s)
export OUT
left() { echo $(( 330 - $(date +%s) + T_START )); }
# final attention kernel (ldfree / dqw barriers): goldens and NF4 through ctest, all real-width cases, then per-op times of the 4 x 2048 step
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_golden|test_nf4_cuda" timeout 120 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
cp /tmp/run.log /tmp/tests-fast.log $OUT/ 2>/dev/null
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 70 )) ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/realwidth.log)
cp /tmp/realwidth.log $OUT/
if [ $(left) -gt 50 ]; then
  LORA4J_PHASE_TIMES=/tmp/phases.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout $(( $(left) - 5 )) $B/bench_cuda > /tmp/bench_phases.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bench_phases.jsonl /tmp/phases.jsonl > /tmp/phases.txt 2>&1
  cp /tmp/phases.txt /tmp/phases.jsonl /tmp/bench_phases.jsonl $OUT/ 2>/dev/null
fi
grep -a "rc=\|Passed\|Failed\|FAIL" /tmp/run.log /tmp/tests-fast.log | grep -v " PASS" | cut -c1-200 | head -10
grep -a "FAIL\|rc=\|cpu reference\|failure" /tmp/realwidth.log | cut -c1-160 | tail -10; echo "realwidth PASS lines: $(grep -ac PASS /tmp/realwidth.log)"
head -40 /tmp/phases.txt 2>/dev/null | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
