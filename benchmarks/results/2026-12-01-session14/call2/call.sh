set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-590}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# e3d4745.. (layer 0 without the embedding's input gradient; lora_b_residual four rows in flight; the CUPTI kernel trace):
# tests, whole step A/B against b80c602, per-op phase times, kernel trace of the 32-layer step
mkdir -p /tmp/base && tar -C /tmp/base -xzf .gpu/base-b80c602.tgz
(cmake -S /tmp/base/native -B /tmp/base/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/basecfg.log 2>&1 && nice cmake --build /tmp/base/build -j 6 --target bench_cuda lora4j_cuda > /tmp/basebuild.log 2>&1) &
BPID=$!
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_offload_cuda" timeout 220 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/l1 && tar -C /tmp/l1 -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
cp /tmp/run.log /tmp/l1/tests.log $OUT/ 2>/dev/null
B=native/build-gpu
wait $BPID; echo "base build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/ab.log
for v in new base new base; do
  [ $(left) -lt 150 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  BB=$B; [ $v = base ] && BB=/tmp/base/build
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done
cp /tmp/ab.log $OUT/
# kernel trace of the 32-layer 4 x 2048 step (new), if the tool was built
KT=$B/liblora4j_kernel_trace.so
if [ -f $KT ] && [ $(left) -gt 80 ]; then
  CUDA_INJECTION64_PATH=$KT LORA4J_KERNEL_TRACE_OUT=$OUT/trace.txt LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 60 $B/bench_cuda > $OUT/trace-run.log 2>&1
  echo "trace rc=$?" >> $OUT/trace-run.log
else
  echo "no trace: $(ls $KT 2>&1), $(left) s left" > $OUT/trace-run.log
fi
if [ $(left) -gt 60 ]; then
  LORA4J_PHASE_TIMES=/tmp/phases.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout $(( $(left) - 10 )) $B/bench_cuda > /tmp/bench_phases.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bench_phases.jsonl /tmp/phases.jsonl > /tmp/phases.txt 2>&1
  cp /tmp/phases.txt /tmp/phases.jsonl /tmp/bench_phases.jsonl $OUT/ 2>/dev/null
fi
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -24
grep -a "Passed\|Failed" /tmp/l1/tests.log | tail -6
grep -a "FAIL" /tmp/l1/tests.log | cut -c1-200 | head
grep -a "hd128 lora grads" /tmp/l1/tests.log | cut -c1-150 | head -4
cut -c1-220 /tmp/ab.log
tail -3 $OUT/trace-run.log; head -60 $OUT/trace.txt 2>/dev/null | cut -c1-170
head -45 /tmp/phases.txt 2>/dev/null | cut -c1-150
echo "total $(( $(date +%s) - T_START )) s"
