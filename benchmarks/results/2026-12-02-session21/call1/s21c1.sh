set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-560}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-first session, call1: this tree = main (dce8e96: d057ef0 and dce8e96 not yet run on a
# GPU). 1. main's GPU tests (ops, engine with golden, NF4, offload, op bench); 2. padded rows
# (LORA4J_BENCH_PADDED=0.4, 4 x 2048, 32 layers, no recompute) main against e7cf872 (the
# nineteenth session's commit, .gpu/base-e7cf872.tgz) alternated three times, full rows once
# each beside: is the command line's padded slowdown of the twentieth session in the engine?
# 3. main's per-op times at 4 x 2048 (dy B + dLoRA_B per projection); 4. real-width cases.
mkdir -p /tmp/e7 && tar -C /tmp/e7 -xzf .gpu/base-e7cf872.tgz
(cmake -S /tmp/e7/native -B /tmp/build-e7 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/e7-cfg.log 2>&1 && nice cmake --build /tmp/build-e7 -j 6 --target bench_cuda > /tmp/e7-build.log 2>&1; echo "e7 build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/bb.log) &
P1=$!
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "main build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum.log
wait $P1
cat /tmp/bb.log >> /tmp/sum.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 150 ctest -V -R "test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_offload_cuda|test_op_bench_cuda" > /tmp/tests.log 2>&1; echo "main tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
: > /tmp/padded.log; : > /tmp/full.log
for i in 1 2 3; do for v in main e7; do
  [ $(left) -lt 200 ] && break 2
  BB=$B; [ $v = e7 ] && BB=/tmp/build-e7
  LORA4J_BENCH_PADDED=0.4 LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 45 $BB/bench_cuda 2>&1 | grep '"train_step"' | sed "s/^/$v /" >> /tmp/padded.log
done; done
for v in main e7; do
  [ $(left) -lt 170 ] && break
  BB=$B; [ $v = e7 ] && BB=/tmp/build-e7
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 45 $BB/bench_cuda 2>&1 | grep '"train_step"' | sed "s/^/$v /" >> /tmp/full.log
done
echo "padded/full a/b at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
if [ $(left) -gt 110 ]; then
  LORA4J_PHASE_TIMES=/tmp/ph.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 45 $B/bench_cuda > /tmp/bph.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph.jsonl /tmp/ph.jsonl > /tmp/phases.txt 2>&1
  echo "phases at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
fi
if [ $(left) -gt 50 ]; then
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 10 )) ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
fi
cp /tmp/sum.log /tmp/tests.log /tmp/padded.log /tmp/full.log /tmp/phases.txt /tmp/realwidth.log /tmp/build.log /tmp/e7-build.log $OUT/ 2>/dev/null
cat /tmp/sum.log
echo "== tests"; grep -a "Passed\|Failed" /tmp/tests.log | cut -c1-120 | head -8; grep -a "FAIL\|skipp" /tmp/tests.log | cut -c1-200 | head -12
grep -a "hd128 lora grads\|segment runs\]" /tmp/tests.log | cut -c1-150 | head -6
echo "== realwidth"; grep -a "FAIL" /tmp/realwidth.log | head -6; tail -2 /tmp/realwidth.log
echo "== phases"; grep -a "ms per step\|dy B\|^[a-z]" /tmp/phases.txt | grep -v "^op\|^group" | head -60 | cut -c1-110
echo "== padded (e7 against main)"; python3 benchmarks/ab.py /tmp/padded.log 2>&1 | cut -c1-300
echo "== full"; cut -c1-200 /tmp/full.log
echo "total $(( $(date +%s) - T_START )) s"
