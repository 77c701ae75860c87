set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-580}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-fourth session, call2 (main + two changes): the attention forward's blocks in
# longest-first order over every (row, head) (LORA4J_ATTN_FWD_ORDER=row: the old order), and the
# SwiGLU backward with down's LoRA term on A staged in shared memory (LORA4J_SWIGLU_LORA_SMEM=0:
# the register kernel). 1. build; 2. swiglu_lora op tests + timings each way; 3. attention op
# times each way, alternated, and torch SDPA (cuDNN) in the same call; 4. engine/ops/golden
# tests; 5. per-op phases each way; 6. paired whole step; 7. 7B real-width cases.
W=/tmp/w; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
grep -E "error" $W/build.log | head -5
B=native/build-gpu
for v in default 0 all; do
  (cd $B && LORA4J_SWIGLU_LORA_SMEM=$v LORA4J_OPS_ONLY=swiglu_lora LORA4J_REQUIRE_GPU=1 timeout 60 ./test_ops_cuda > $W/sl-$v.log 2>&1; echo "swiglu_lora smem=$v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
done
export LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so
for rep in 1 2; do
  timeout 60 $B/bench_ops attention_fwd attention_bwd > $W/att-new-$rep.txt 2>&1
  LORA4J_ATTN_FWD_ORDER=row timeout 60 $B/bench_ops attention_fwd attention_bwd > $W/att-row-$rep.txt 2>&1
done
echo "attention ops at $(( $(date +%s) - T_START )) s" >> $W/sum.log
OUT=$W timeout 120 python3 benchmarks/reference/torch_ops_baseline.py > $W/torch_ops.log 2>&1
[ -f $W/anchors_ops.json ] && python3 benchmarks/compare.py --attention $W/att-new-2.txt $W/anchors_ops.json > $W/attention-vs-cudnn.txt 2>&1
echo "torch at $(( $(date +%s) - T_START )) s" >> $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 80 ctest -V -R "test_ops_cuda|test_golden|test_nf4_cuda" > $W/tests.log 2>&1; echo "tests rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
for v in new old; do
  [ $(left) -lt 230 ] && break
  sw="LORA4J_NONE=1"; [ $v = old ] && sw="LORA4J_SWIGLU_LORA_SMEM=0 LORA4J_ATTN_FWD_ORDER=row"
  env $sw LORA4J_PHASE_TIMES=$W/ph-$v.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
    timeout 45 $B/bench_cuda > $W/bph-$v.jsonl 2>&1
  python3 benchmarks/phases.py $W/bph-$v.jsonl $W/ph-$v.jsonl > $W/phases-$v.txt 2>&1
done
echo "phases at $(( $(date +%s) - T_START )) s" >> $W/sum.log
: > $W/pairs.log
if [ $(left) -gt 200 ]; then
  LORA4J_BENCH_PAIRS=20 LORA4J_BENCH_AB="LORA4J_SWIGLU_LORA_SMEM=0,LORA4J_ATTN_FWD_ORDER=row" LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 110 $B/bench_cuda 2>&1 | grep '"train_step_pair"' | sed "s/^/new /" >> $W/pairs.log
  echo "pairs at $(( $(date +%s) - T_START )) s" >> $W/sum.log
fi
if [ $(left) -gt 40 ]; then
  (cd $B && LORA4J_REALWIDTH_CASES=7b-v0.3 LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 12 )) ./test_realwidth_cuda > $W/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
fi
rm -f $W/*.jsonl.tmp
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
echo "== swiglu_lora"; for v in default 0 all; do echo "-- smem=$v"; grep -a "FAIL\|timing" $W/sl-$v.log | cut -c1-200; tail -1 $W/sl-$v.log; done
echo "== attention (new / row order)"; for f in $W/att-*.txt; do echo "-- $f"; grep -a "attention" $f | cut -c1-150; done
cat $W/attention-vs-cudnn.txt 2>/dev/null | tail -12
echo "== engine"; grep -a "FAIL" $W/eng.log | cut -c1-200 | head -8; grep -a "hd128 lora grads" $W/eng.log | cut -c1-160; tail -1 $W/eng.log
echo "== other tests"; grep -a "Passed\|Failed" $W/tests.log | cut -c1-100; grep -a "FAIL" $W/tests.log | cut -c1-200 | head -6
echo "== realwidth"; grep -a "FAIL" $W/realwidth.log | head -4; tail -1 $W/realwidth.log
for v in new old; do echo "== phases $v"; grep -a "ms per step\|attention forward\|swiglu backward" $W/phases-$v.txt | cut -c1-110; done
echo "== pairs"; python3 benchmarks/ab.py $W/pairs.log 2>&1 | tail -2 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
