set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-570}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-third session, call3: this tree = branch swiglu-dx (clusters of two, W multicast) = main + the fused down input gradient with the SwiGLU
# backward as its epilogue (swiglu_dx_sm90.cu; LORA4J_SWIGLU_DX_FUSED=0 keeps the GEMM into fp32 dh
# and the SwiGLU backward). 1. its op tests; 2. test_engine_cuda (golden with the fused path on);
# 3. per-op times with and without it; 4. 24 paired steps; 5. the other tests and the 7B
# real-width cases with the time left.
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum.log
grep -E "error" /tmp/build.log | head -5
B=native/build-gpu
(cd $B && LORA4J_OPS_ONLY=swiglu_dx LORA4J_REQUIRE_GPU=1 timeout 90 ./test_ops_cuda > /tmp/ops-sdx.log 2>&1; echo "ops swiglu_dx rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > /tmp/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
if [ $(left) -gt 300 ]; then
  LORA4J_PHASE_TIMES=/tmp/ph.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 45 $B/bench_cuda > /tmp/bph.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph.jsonl /tmp/ph.jsonl > /tmp/phases.txt 2>&1
  LORA4J_SWIGLU_DX_FUSED=0 LORA4J_PHASE_TIMES=/tmp/ph0.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 45 $B/bench_cuda > /tmp/bph0.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph0.jsonl /tmp/ph0.jsonl > /tmp/phases-off.txt 2>&1
  echo "phases at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
fi
: > /tmp/pairs.log
if [ $(left) -gt 230 ]; then
  LORA4J_BENCH_PAIRS=24 LORA4J_BENCH_AB=LORA4J_SWIGLU_DX_FUSED=0 LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 110 $B/bench_cuda 2>&1 | grep '"train_step_pair"' | sed "s/^/fused /" >> /tmp/pairs.log
  echo "pairs at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
fi
if [ $(left) -gt 100 ]; then
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 60 ctest -V -R "test_ops_cuda|test_golden|test_nf4_cuda|test_offload_cuda" > /tmp/tests.log 2>&1; echo "tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
fi
if [ $(left) -gt 40 ]; then
  (cd $B && LORA4J_REALWIDTH_CASES=7b-v0.3 LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 12 )) ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
fi
grep -a "FAIL\|Passed\|Failed\|hd128 lora grads" /tmp/tests.log /tmp/eng.log 2>/dev/null | cut -c1-230 > /tmp/tests-key.txt
grep -a "swiglu_dx\|swiglu dx" /tmp/ops-sdx.log /tmp/eng.log | cut -c1-230 > /tmp/sdx-key.txt
for f in sum.log tests-key.txt sdx-key.txt pairs.log phases.txt phases-off.txt; do cp /tmp/$f $OUT/ 2>/dev/null; done
tail -8 /tmp/realwidth.log > $OUT/realwidth-tail.txt 2>/dev/null
for f in ops-sdx eng tests realwidth; do gzip -c /tmp/$f.log > $OUT/$f.log.gz 2>/dev/null; done
cat /tmp/sum.log
echo "== swiglu_dx"; grep -a "FAIL" /tmp/sdx-key.txt | head -12; grep -ac PASS /tmp/sdx-key.txt; grep -a "vs double\|one bf16 step\|worst LoRA grad, all seven, no" /tmp/sdx-key.txt | cut -c1-170 | head -8
echo "== engine"; grep -a "FAIL" /tmp/eng.log | cut -c1-200 | head -8; grep -a "hd128 lora grads" /tmp/eng.log | cut -c1-160; tail -1 /tmp/eng.log
echo "== other tests"; grep -a "Passed\|Failed" /tmp/tests.log | cut -c1-100; grep -a "FAIL" /tmp/tests.log | cut -c1-200 | head -6
echo "== realwidth"; grep -a "FAIL" /tmp/realwidth.log | head -4; tail -1 /tmp/realwidth.log
echo "== phases (fused)"; grep -a "ms per step\|down_proj dX\|swiglu backward\|input gradients" /tmp/phases.txt | head -6 | cut -c1-110
echo "== phases (off)"; grep -a "ms per step\|down_proj dX\|swiglu backward\|input gradients" /tmp/phases-off.txt | head -6 | cut -c1-110
echo "== pairs"; python3 benchmarks/ab.py /tmp/pairs.log 2>&1 | tail -2 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
