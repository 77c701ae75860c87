set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-565}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-first session, call2: this tree = branch s21 (main + dy-stages: lora_dy_pair through four
# cp.async stages of 32-row tiles; swiglu-mma: down's LoRA sum in the SwiGLU backward on tensor
# cores, LORA4J_SWIGLU_LORA_MMA=0 keeps the fmaf chain; opt-refresh: the optimizer step's 320
# copies in one launch, LORA4J_BATCHED_REFRESH=0 keeps one cudaMemcpy each). main
# (.gpu/base-main.tgz) built beside it. 1. s21's GPU tests; 2. paired A/B in one process for the
# two switches (16 pairs, 4 x 2048, 32 layers); 3. main against s21 alternated twice (the whole
# step; dy-stages has no switch); 4. per-op times of s21 (call1 has main's); 5. real-width cases.
mkdir -p /tmp/main && tar -C /tmp/main -xzf .gpu/base-main.tgz
(cmake -S /tmp/main/native -B /tmp/build-main -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/main-cfg.log 2>&1 && nice cmake --build /tmp/build-main -j 6 > /tmp/main-build.log 2>&1; echo "main build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/bb.log) &
P1=$!
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "s21 build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum.log
wait $P1
cat /tmp/bb.log >> /tmp/sum.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 150 ctest -V -R "test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_offload_cuda|test_op_bench_cuda" > /tmp/tests.log 2>&1; echo "s21 tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
: > /tmp/pairs.log
for ab in LORA4J_SWIGLU_LORA_MMA=0 LORA4J_BATCHED_REFRESH=0; do
  [ $(left) -lt 260 ] && break
  LORA4J_BENCH_PAIRS=16 LORA4J_BENCH_AB="$ab" LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 90 $B/bench_cuda 2>&1 | grep '"train_step_pair"' | sed "s/^/s21 /" >> /tmp/pairs.log
done
echo "pairs at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
: > /tmp/ab.log
for i in 1 2; do for v in main s21; do
  [ $(left) -lt 190 ] && break 2
  BB=$B; [ $v = main ] && BB=/tmp/build-main
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 45 $BB/bench_cuda 2>&1 | grep '"train_step"' | sed "s/^/$v /" >> /tmp/ab.log
done; done
echo "main/s21 a/b at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
if [ $(left) -gt 150 ]; then
  LORA4J_PHASE_TIMES=/tmp/ph.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 45 $B/bench_cuda > /tmp/bph.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph.jsonl /tmp/ph.jsonl > /tmp/phases.txt 2>&1
  echo "phases at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
fi
if [ $(left) -gt 50 ]; then
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 10 )) ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
fi
grep -a "FAIL\|timing\|Passed\|Failed\|hd128 lora grads\|batched refresh\|copy16\|tensor cores" /tmp/tests.log | cut -c1-230 > /tmp/tests-key.txt
cp /tmp/sum.log /tmp/tests-key.txt /tmp/pairs.log /tmp/ab.log /tmp/phases.txt /tmp/realwidth.log $OUT/ 2>/dev/null
gzip -c /tmp/tests.log > $OUT/tests.log.gz
cat /tmp/sum.log
echo "== tests"; grep -a "Passed\|Failed" /tmp/tests.log | cut -c1-120 | head -8; grep -a "FAIL" /tmp/tests.log | cut -c1-220 | head -14
grep -a "hd128 lora grads\|batched refresh\]\|timing.*tensor cores\|timing.*lora_dy\|copy16\]" /tmp/tests.log | cut -c1-200 | head -14
echo "== realwidth"; grep -a "FAIL" /tmp/realwidth.log | head -6; tail -1 /tmp/realwidth.log
echo "== phases"; grep -a "ms per step\|dy B\|swiglu\|^element\|optimizer" /tmp/phases.txt | head -14 | cut -c1-110
echo "== pairs"; python3 benchmarks/ab.py /tmp/pairs.log 2>&1 | tail -4 | cut -c1-300
echo "== main vs s21"; python3 benchmarks/ab.py /tmp/ab.log 2>&1 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
