set -u
# The next GPU call for branch swiglu-dx-epi (the patches in this folder on main; copy this
# script to .gpu/ and carry it). Forms 7 and 8 have not run on a GPU yet; form 5 (the default)
# passed the op tests and measured 1.761 ms a layer against the unfused 1.902 (call6), but has
# not yet been through test_engine_cuda, the real-width cases or a paired whole step.
# 1. build; 2. the fused op's tests over all eight forms; 3. test_engine_cuda (golden and the
# fused-vs-unfused A/B with form 5); 4. per-op phases: unfused, 5, 7, 8, 6; 5. paired whole steps
# (form 5 and form 8 against the unfused path); 6. the 7B real-width cases with form 5.
T_START=$(date +%s)
export OUT
LIM=${LIM:-570}
left() { echo $(( LIM - $(date +%s) + T_START )); }
W=/tmp/w; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
(cd $B && LORA4J_OPS_ONLY=swiglu_dx LORA4J_REQUIRE_GPU=1 timeout 60 ./test_ops_cuda > $W/ops-sdx.log 2>&1; echo "ops swiglu_dx rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
: > $W/forms.txt
for form in off 5 7 8 6; do
  [ $(left) -lt 300 ] && break
  if [ $form = off ]; then sw="LORA4J_SWIGLU_DX_FUSED=0"; else sw="LORA4J_SWIGLU_DX_FORM=$form"; fi
  env $sw LORA4J_PHASE_TIMES=$W/ph-$form.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
    timeout 40 $B/bench_cuda > $W/bph-$form.jsonl 2>&1
  python3 benchmarks/phases.py $W/bph-$form.jsonl $W/ph-$form.jsonl > $W/phases-$form.txt 2>&1
  echo "== $sw" >> $W/forms.txt
  grep -a "ms per step\|down_proj dX\|swiglu backward" $W/phases-$form.txt | cut -c1-110 >> $W/forms.txt
done
: > $W/pairs.log
for form in 5 8; do
  [ $(left) -lt 170 ] && break
  LORA4J_SWIGLU_DX_FORM=$form LORA4J_BENCH_PAIRS=20 LORA4J_BENCH_AB=LORA4J_SWIGLU_DX_FUSED=0 LORA4J_BENCH_LAYERS=32 \
    LORA4J_BENCH_SETTINGS=4x2048-none timeout 75 $B/bench_cuda 2>&1 | grep '"train_step_pair"' | sed "s/^/form$form /" >> $W/pairs.log
done
if [ $(left) -gt 40 ]; then
  (cd $B && LORA4J_REALWIDTH_CASES=7b-v0.3 LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 12 )) ./test_realwidth_cuda > $W/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
fi
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
echo "== ops"; grep -a "FAIL" $W/ops-sdx.log | cut -c1-200 | head -8; tail -1 $W/ops-sdx.log
echo "== engine"; grep -a "FAIL" $W/eng.log | cut -c1-200 | head -8; grep -a "hd128 lora grads\|swiglu dx" $W/eng.log | cut -c1-160; tail -1 $W/eng.log
echo "== realwidth"; grep -a "FAIL" $W/realwidth.log | head -4; tail -1 $W/realwidth.log
cat $W/forms.txt
echo "== pairs (b = unfused)"; python3 benchmarks/ab.py $W/pairs.log 2>&1 | tail -3 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
