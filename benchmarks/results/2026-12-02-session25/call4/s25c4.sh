set -u
T_START=$(date +%s)
export OUT
# Twenty-fifth session, call4 (main c0944d7): where the fused
# kernel's warps stall, instruction by instruction (Nsight Compute source counters, SASS), for
# form 1 (192 wide, 3 stages, the default) and form 2 (128 wide, 4 stages), beside cuBLASLt's kernel for the same GEMM.
W=/tmp/w; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for run in f1 f2 cublas; do
  case $run in
    f1) sw="LORA4J_SWIGLU_DX_FORM=1"; rx="swiglu_dx_sm90" ;;
    f2) sw="LORA4J_SWIGLU_DX_FORM=2"; rx="swiglu_dx_sm90" ;;
    cublas) sw="LORA4J_SWIGLU_DX_FUSED=0"; rx="nvjet_sm90_tss_320x128" ;;
  esac
  env $sw LORA4J_BENCH_LAYERS=2 LORA4J_BENCH_STEPS=1 LORA4J_BENCH_SETTINGS=4x2048-none timeout 100 $NCU \
    --clock-control none --kernel-name regex:"$rx" --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SourceCounters --section InstructionStats \
    -o $W/$run $B/bench_cuda > $W/ncu-$run.log 2>&1
  $NCU -i $W/$run.ncu-rep --page details > $W/$run-details.txt 2>&1
  $NCU -i $W/$run.ncu-rep --page source --csv --print-source sass > $W/$run-sass.csv 2>&1
  rm -f $W/$run.ncu-rep
  echo "ncu $run at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
for run in f1 f2 cublas; do echo "== $run"; grep -a "Duration\|Warp Cycles Per Issued\|Compute (SM) Throughput" $W/$run-details.txt | head -4; wc -l < $W/$run-sass.csv; done
echo "total $(( $(date +%s) - T_START )) s"
