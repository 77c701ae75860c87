set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-560}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-second session, call2: this tree = main (7151d70) + q, k and v weights stacked per layer (pack_qkv;
# LORA4J_QKV_WBLOCK=0 keeps them apart and copies them into wqkv_ every layer).
# 1. every ctest test but the 2-GPU one; 2. paired A/B in one process, 24 pairs, 4 x 2048, 32
# layers; 3. per-op times; 4. the 7B real-width cases with the time left.
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum.log
tail -3 /tmp/build.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_REALWIDTH_STEPS=0 timeout 240 ctest -V -E "dist" > /tmp/tests.log 2>&1; echo "tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
: > /tmp/pairs.log
if [ $(left) -gt 200 ]; then
  LORA4J_BENCH_PAIRS=24 LORA4J_BENCH_AB=LORA4J_QKV_WBLOCK=0 LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 110 $B/bench_cuda 2>&1 | grep '"train_step_pair"' | sed "s/^/wblock /" >> /tmp/pairs.log
fi
echo "pairs at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
if [ $(left) -gt 120 ]; then
  LORA4J_PHASE_TIMES=/tmp/ph.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 45 $B/bench_cuda > /tmp/bph.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph.jsonl /tmp/ph.jsonl > /tmp/phases.txt 2>&1
  LORA4J_QKV_WBLOCK=0 LORA4J_PHASE_TIMES=/tmp/ph0.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 45 $B/bench_cuda > /tmp/bph0.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph0.jsonl /tmp/ph0.jsonl > /tmp/phases-copies.txt 2>&1
  echo "phases at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
fi
if [ $(left) -gt 40 ]; then
  (cd $B && LORA4J_REALWIDTH_CASES=7b-v0.3 LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 8 )) ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
fi
grep -a "FAIL\|timing\|Passed\|Failed\|hd128 lora grads\|tensor cores\|strided\|row stride\|in one block\|A rows\|bitwise" /tmp/tests.log | cut -c1-230 > /tmp/tests-key.txt
cp /tmp/sum.log /tmp/tests-key.txt /tmp/pairs.log /tmp/phases.txt /tmp/phases-copies.txt /tmp/realwidth.log $OUT/ 2>/dev/null
gzip -c /tmp/tests.log > $OUT/tests.log.gz
cat /tmp/sum.log
echo "== tests"; grep -a "Passed\|Failed" /tmp/tests.log | cut -c1-120 | head -8; grep -a "FAIL" /tmp/tests.log | cut -c1-220 | head -14
grep -a "hd128 lora grads\|in one block\|A rows\|merged: logits" /tmp/tests.log | cut -c1-200 | head -20
grep -ac "PASS" /tmp/tests.log
echo "== realwidth"; grep -a "FAIL" /tmp/realwidth.log | head -6; tail -1 /tmp/realwidth.log
echo "== phases"; grep -a "ms per step\|q/k/v dX\|rope backward\|attention backward" /tmp/phases.txt | head -8 | cut -c1-120
echo "== phases (copies)"; grep -a "ms per step\|q/k/v dX\|rope backward\|attention backward" /tmp/phases-copies.txt | head -8 | cut -c1-120
echo "== pairs"; python3 benchmarks/ab.py /tmp/pairs.log 2>&1 | tail -2 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
