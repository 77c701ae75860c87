set -u
# Twenty-sixth session, call 2: branch swiglu-dx-mc. (a) the fused down dX + SwiGLU backward in
# ping-pong forms 3 and 4 (no dh buffer); (b) the gate/up forward with the SwiGLU forward in one
# kernel (swiglu_gu_sm90.cu, on by default, LORA4J_SWIGLU_GU_FUSED=0 off). 1. build; 2. the op
# tests of both kernels; 3. test_engine_cuda (default: dx form 1, gu fused), with dx form 3, and
# with LORA4J_LORA_FOLD=1 (the golden through the fused forward); 4. per-op phases: dx forms 1, 3,
# 4 and gu off; 5. paired whole steps: dx form 3 against 1, gu fused against not; 6. the 7B
# real-width cases with dx form 3 and gu fused.
T_START=$(date +%s)
export OUT
LIM=${LIM:-480}
left() { echo $(( LIM - $(date +%s) + T_START )); }
W=/tmp/w; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
for su in swiglu_dx swiglu_gu; do
  (cd $B && LORA4J_OPS_ONLY=$su LORA4J_REQUIRE_GPU=1 timeout 100 ./test_ops_cuda > $W/ops-$su.log 2>&1; echo "ops $su rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
done
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_SWIGLU_DX_FORM=3 LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng3.log 2>&1; echo "engine dx form 3 rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_LORA_FOLD=1 LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/engf.log 2>&1; echo "engine fold=1 rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
: > $W/forms.txt
for run in 1 3 4 guoff; do
  [ $(left) -lt 230 ] && break
  case $run in guoff) sw="LORA4J_SWIGLU_GU_FUSED=0";; *) sw="LORA4J_SWIGLU_DX_FORM=$run";; esac
  env $sw LORA4J_PHASE_TIMES=$W/ph-$run.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
    timeout 40 $B/bench_cuda > $W/bph-$run.jsonl 2>&1
  python3 benchmarks/phases.py $W/bph-$run.jsonl $W/ph-$run.jsonl > $W/phases-$run.txt 2>&1
  echo "== $sw" >> $W/forms.txt
  grep -a "ms per step\|down_proj dX\|swiglu \|mlp.gate_proj\|mlp.up_proj  " $W/phases-$run.txt | cut -c1-110 >> $W/forms.txt
done
: > $W/pairs.log
for ab in LORA4J_SWIGLU_DX_FORM=3 LORA4J_SWIGLU_GU_FUSED=0; do
  [ $(left) -lt 130 ] && break
  LORA4J_SWIGLU_DX_FORM=1 LORA4J_BENCH_PAIRS=16 LORA4J_BENCH_AB=$ab LORA4J_BENCH_LAYERS=32 \
    LORA4J_BENCH_SETTINGS=4x2048-none timeout 75 $B/bench_cuda 2>&1 | grep '"train_step_pair"' >> $W/pairs.log
done
if [ $(left) -gt 50 ]; then
  (cd $B && LORA4J_SWIGLU_DX_FORM=3 LORA4J_REALWIDTH_CASES=7b-v0.3 LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 12 )) ./test_realwidth_cuda > $W/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
fi
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
for su in swiglu_dx swiglu_gu; do echo "== ops $su"; grep -a "FAIL" $W/ops-$su.log | cut -c1-200 | head -8; tail -1 $W/ops-$su.log; done
for e in eng eng3 engf; do echo "== $e"; grep -a "FAIL" $W/$e.log | cut -c1-200 | head -6; grep -a "hd128 lora grads (max\|swiglu gu\]" $W/$e.log | cut -c1-150 | head -10; tail -1 $W/$e.log; done
echo "== realwidth"; grep -a "FAIL" $W/realwidth.log | head -4; tail -1 $W/realwidth.log
cat $W/forms.txt
echo "== pairs (a = dx form 1, gu fused)"; python3 benchmarks/ab.py $W/pairs.log 2>&1 | tail -3 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
