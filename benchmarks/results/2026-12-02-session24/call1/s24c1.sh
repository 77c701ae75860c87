set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-575}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-fourth session, call1: branch swiglu-dx rebased on main b0158fa (main's qkv_pair mend
# included). 1. build; 2. fused op tests over the four forms; 3. test_engine_cuda (A/B and golden,
# the mend's first GPU run); 4. per-op times of each form against the unfused path; 5. Nsight
# Compute on cuBLASLt's nvjet kernel beside form 2; 6. other tests; 7. 7B real-width cases.
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum.log
grep -E "error" /tmp/build.log | head -5
B=native/build-gpu
(cd $B && LORA4J_OPS_ONLY=swiglu_dx LORA4J_REQUIRE_GPU=1 timeout 90 ./test_ops_cuda > /tmp/ops-sdx.log 2>&1; echo "ops swiglu_dx rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > /tmp/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
: > /tmp/forms.txt
for form in off 1 2 3 4; do
  [ $(left) -lt 260 ] && break
  if [ $form = off ]; then sw="LORA4J_SWIGLU_DX_FUSED=0"; else sw="LORA4J_SWIGLU_DX_FORM=$form"; fi
  env $sw LORA4J_PHASE_TIMES=/tmp/ph-$form.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
    timeout 45 $B/bench_cuda > /tmp/bph-$form.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph-$form.jsonl /tmp/ph-$form.jsonl > /tmp/phases-$form.txt 2>&1
  echo "== $sw" >> /tmp/forms.txt
  grep -a "ms per step\|down_proj dX\|swiglu backward\|swiglu_dx" /tmp/phases-$form.txt | cut -c1-110 >> /tmp/forms.txt
done
echo "forms at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for run in fused unfused; do
  [ $(left) -lt 170 ] && break
  sw=LORA4J_SWIGLU_DX_FORM=2; [ $run = unfused ] && sw=LORA4J_SWIGLU_DX_FUSED=0
  env $sw LORA4J_BENCH_LAYERS=2 LORA4J_BENCH_STEPS=1 LORA4J_BENCH_SETTINGS=4x2048-none timeout 80 $NCU \
    --clock-control none --kernel-name regex:"nvjet|swiglu_dx_sm90|swiglu_bwd" --launch-count 40 \
    --section SpeedOfLight --section WarpStateStats --section LaunchStats --section MemoryWorkloadAnalysis \
    --section ComputeWorkloadAnalysis --section Occupancy -o /tmp/$run $B/bench_cuda > /tmp/ncu-$run.log 2>&1
  $NCU -i /tmp/$run.ncu-rep --page details > /tmp/ncu-$run.txt 2>&1
  gzip -c /tmp/ncu-$run.txt > $OUT/ncu-$run.txt.gz
  echo "ncu $run at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
done
if [ $(left) -gt 140 ]; then
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 60 ctest -V -R "test_ops_cuda|test_golden|test_nf4_cuda" > /tmp/tests.log 2>&1; echo "tests rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
fi
if [ $(left) -gt 40 ]; then
  (cd $B && LORA4J_REALWIDTH_CASES=7b-v0.3 LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 12 )) ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log)
fi
grep -a "FAIL\|Passed\|Failed\|hd128 lora grads" /tmp/tests.log /tmp/eng.log 2>/dev/null | cut -c1-230 > /tmp/tests-key.txt
for f in sum.log forms.txt tests-key.txt; do cp /tmp/$f $OUT/ 2>/dev/null; done
for f in phases-off phases-1 phases-2 phases-3 phases-4; do cp /tmp/$f.txt $OUT/ 2>/dev/null; done
tail -8 /tmp/realwidth.log > $OUT/realwidth-tail.txt 2>/dev/null
for f in ops-sdx eng tests realwidth ncu-fused ncu-unfused; do gzip -c /tmp/$f.log > $OUT/$f.log.gz 2>/dev/null; done
cat /tmp/sum.log
echo "== swiglu_dx ops"; grep -a "FAIL" /tmp/ops-sdx.log | cut -c1-200 | head -8; grep -ac PASS /tmp/ops-sdx.log
echo "== engine"; grep -a "FAIL" /tmp/eng.log | cut -c1-200 | head -8; grep -a "hd128 lora grads\|swiglu" /tmp/eng.log | cut -c1-160 | head -6; tail -1 /tmp/eng.log
echo "== other tests"; grep -a "Passed\|Failed" /tmp/tests.log | cut -c1-100; grep -a "FAIL" /tmp/tests.log | cut -c1-200 | head -6
echo "== realwidth"; grep -a "FAIL" /tmp/realwidth.log | head -4; tail -1 /tmp/realwidth.log
echo "== ncu"; grep -a "nvjet\|swiglu_dx_sm90\|Compute (SM) Throughput\|Duration\|Grid Size\|Block Size\|Registers\|Shared Memory Config\|Dynamic Shared" /tmp/ncu-unfused.txt 2>/dev/null | head -24 | cut -c1-140
cat /tmp/forms.txt
echo "total $(( $(date +%s) - T_START )) s"
