set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-175}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-fourth session, call6 (branch swiglu-dx-epi): forms 5 and 6 = forms 2 and 3 with a
# fourth warpgroup of epilogue warps. 1. build; 2. the fused op's tests over all six forms;
# 3. per-op phases: unfused, 5, 2, 6, 3.
W=/tmp/w; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 120 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
grep -E "error" $W/build.log | head -5
B=native/build-gpu
(cd $B && LORA4J_OPS_ONLY=swiglu_dx LORA4J_REQUIRE_GPU=1 timeout 40 ./test_ops_cuda > $W/ops-sdx.log 2>&1; echo "ops swiglu_dx rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
: > $W/forms.txt
for form in off 5 2 6 3; do
  [ $(left) -lt 25 ] && break
  if [ $form = off ]; then sw="LORA4J_SWIGLU_DX_FUSED=0"; else sw="LORA4J_SWIGLU_DX_FORM=$form"; fi
  env $sw LORA4J_PHASE_TIMES=$W/ph-$form.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
    timeout 30 $B/bench_cuda > $W/bph-$form.jsonl 2>&1
  python3 benchmarks/phases.py $W/bph-$form.jsonl $W/ph-$form.jsonl > $W/phases-$form.txt 2>&1
  echo "== $sw" >> $W/forms.txt
  grep -a "ms per step\|down_proj dX\|swiglu backward" $W/phases-$form.txt | cut -c1-110 >> $W/forms.txt
done
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "FAIL" $W/ops-sdx.log | cut -c1-200 | head -8; grep -ac PASS $W/ops-sdx.log; tail -1 $W/ops-sdx.log
cat $W/forms.txt
echo "total $(( $(date +%s) - T_START )) s"
