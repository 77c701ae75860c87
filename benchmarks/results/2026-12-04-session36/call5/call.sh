set -u
# Thirty-sixth session, call 5 (main as committed before the call): where the 32-layer step at
# 4 x 2048 without recompute goes on today's kernels, for ranking what is left of 1.6x: the CUPTI
# kernel trace (native/bench/kernel_trace.cpp: busy / idle between kernels, the gap histogram,
# kernels by name) and the engine's per-op phase times (LORA4J_PHASE_TIMES,
# benchmarks/phases.py), both on bench_cuda with LORA4J_BENCH_SETTINGS=4x2048-none. The
# fourteenth session's trace put 1.43% of the step idle between kernels (3.1 us a boundary).
# No carry, timeout ~300 s (about 180 s expected).
T_START=$(date +%s)
W=/tmp/w5; mkdir -p $W
B=native/build-gpu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 150 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
KT=$B/liblora4j_kernel_trace.so
CUDA_INJECTION64_PATH=$KT LORA4J_KERNEL_TRACE_OUT=$W/trace.txt LORA4J_BENCH_LAYERS=32 \
  LORA4J_BENCH_SETTINGS=4x2048-none timeout 90 $B/bench_cuda > $W/trace-run.log 2>&1
echo "trace rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
LORA4J_PHASE_TIMES=$W/phases.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
  timeout 90 $B/bench_cuda > $W/bench_phases.jsonl 2>&1
echo "phases rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
python3 benchmarks/phases.py $W/bench_phases.jsonl $W/phases.jsonl > $W/phases.txt 2>&1
tar -C $W -czf $OUT/logs.tgz --exclude=b .
cat $W/sum.log
grep -a '"train_step"' $W/trace-run.log $W/bench_phases.jsonl | cut -c1-200
head -30 $W/trace.txt | cut -c1-160
head -45 $W/phases.txt | cut -c1-160
