set -u
# The next GPU call for branch swiglu-dx (the four patches applied; run from the repository root
# on the device, e.g. copied to .gpu/ and carried): the fused op's tests, its per-op time in each
# of the four forms against the unfused path in one call, Nsight Compute on cuBLASLt's kernel for
# the same GEMM beside the default form's, and the 7B real-width cases with the default form.
T_START=$(date +%s)
export OUT
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum.log
B=native/build-gpu
(cd $B && LORA4J_OPS_ONLY=swiglu_dx LORA4J_REQUIRE_GPU=1 timeout 120 ./test_ops_cuda > /tmp/ops-sdx.log 2>&1; echo "ops swiglu_dx rc=$?" >> /tmp/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > /tmp/eng.log 2>&1; echo "engine rc=$?" >> /tmp/sum.log)
: > /tmp/forms.txt
for form in off 1 2 3 4; do
  if [ $form = off ]; then sw="LORA4J_SWIGLU_DX_FUSED=0"; else sw="LORA4J_SWIGLU_DX_FORM=$form"; fi
  env $sw LORA4J_PHASE_TIMES=/tmp/ph-$form.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
    timeout 45 $B/bench_cuda > /tmp/bph-$form.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph-$form.jsonl /tmp/ph-$form.jsonl > /tmp/phases-$form.txt 2>&1
  echo "== $sw" >> /tmp/forms.txt
  grep -a "ms per step\|down_proj dX\|swiglu backward" /tmp/phases-$form.txt | cut -c1-110 >> /tmp/forms.txt
done
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for run in fused unfused; do
  sw=LORA4J_SWIGLU_DX_FORM=2; [ $run = unfused ] && sw=LORA4J_SWIGLU_DX_FUSED=0
  env $sw LORA4J_BENCH_LAYERS=2 LORA4J_BENCH_STEPS=1 LORA4J_BENCH_SETTINGS=4x2048-none timeout 150 $NCU \
    --clock-control none --kernel-name regex:"nvjet|swiglu_dx_sm90|swiglu_bwd" --launch-count 40 \
    --section SpeedOfLight --section WarpStateStats --section LaunchStats --section MemoryWorkloadAnalysis \
    --section ComputeWorkloadAnalysis --section Occupancy -o /tmp/$run $B/bench_cuda > /tmp/ncu-$run.log 2>&1
  $NCU -i /tmp/$run.ncu-rep --page details > /tmp/ncu-$run.txt 2>&1
  gzip -c /tmp/ncu-$run.txt > $OUT/ncu-$run.txt.gz
done
(cd $B && LORA4J_REALWIDTH_CASES=7b-v0.3 LORA4J_REQUIRE_GPU=1 timeout 120 ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$?" >> /tmp/sum.log)
for f in sum.log forms.txt; do cp /tmp/$f $OUT/; done
for f in ops-sdx eng realwidth; do gzip -c /tmp/$f.log > $OUT/$f.log.gz; done
cat /tmp/sum.log; grep -a FAIL /tmp/ops-sdx.log /tmp/eng.log /tmp/realwidth.log | cut -c1-200 | head -10
cat /tmp/forms.txt
echo "total $(( $(date +%s) - T_START )) s"
