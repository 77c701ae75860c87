set -u
# Twenty-sixth session, call 1: branch swiglu-dx-mc (the fused down dX + SwiGLU backward with
# W multicast over clusters of 2 or 4 blocks: forms 3, 4, 5). 1. build; 2. the fused op's tests
# over all five forms; 3. test_engine_cuda with the default form and with form 3; 4. per-op
# phases for forms 1, 3, 4, 5; 5. paired whole steps, form 3 (and 5) against form 1.
T_START=$(date +%s)
export OUT
LIM=${LIM:-540}
left() { echo $(( LIM - $(date +%s) + T_START )); }
W=/tmp/w; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
(cd $B && LORA4J_OPS_ONLY=swiglu_dx LORA4J_REQUIRE_GPU=1 timeout 120 ./test_ops_cuda > $W/ops-sdx.log 2>&1; echo "ops swiglu_dx rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_SWIGLU_DX_FORM=3 LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng3.log 2>&1; echo "engine form 3 rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
: > $W/forms.txt
for form in 1 3 5 4; do
  [ $(left) -lt 200 ] && break
  sw="LORA4J_SWIGLU_DX_FORM=$form"
  env $sw LORA4J_PHASE_TIMES=$W/ph-$form.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
    timeout 40 $B/bench_cuda > $W/bph-$form.jsonl 2>&1
  python3 benchmarks/phases.py $W/bph-$form.jsonl $W/ph-$form.jsonl > $W/phases-$form.txt 2>&1
  echo "== $sw" >> $W/forms.txt
  grep -a "ms per step\|down_proj dX\|swiglu backward" $W/phases-$form.txt | cut -c1-110 >> $W/forms.txt
done
: > $W/pairs.log
for form in 3 5; do
  [ $(left) -lt 90 ] && break
  LORA4J_SWIGLU_DX_FORM=1 LORA4J_BENCH_PAIRS=20 LORA4J_BENCH_AB=LORA4J_SWIGLU_DX_FORM=$form LORA4J_BENCH_LAYERS=32 \
    LORA4J_BENCH_SETTINGS=4x2048-none timeout 80 $B/bench_cuda 2>&1 | grep '"train_step_pair"' | sed "s/^/form$form /" >> $W/pairs.log
done
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
echo "== ops"; grep -a "FAIL" $W/ops-sdx.log | cut -c1-200 | head -12; tail -1 $W/ops-sdx.log
echo "== engine"; grep -a "FAIL" $W/eng.log | cut -c1-200 | head -8; grep -a "hd128 lora grads\|swiglu dx" $W/eng.log | cut -c1-160 | head -8; tail -1 $W/eng.log
echo "== engine form 3"; grep -a "FAIL" $W/eng3.log | cut -c1-200 | head -8; grep -a "hd128 lora grads" $W/eng3.log | cut -c1-160 | head -4; tail -1 $W/eng3.log
cat $W/forms.txt
echo "== pairs (a = form 1, b = the clustered form)"; python3 benchmarks/ab.py $W/pairs.log 2>&1 | tail -4 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
