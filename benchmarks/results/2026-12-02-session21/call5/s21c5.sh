set -u
T_START=$(date +%s)
export OUT
# Twenty-first session, call5 (main): Nsight Compute on the LoRA pair pass (lora_dy_pair and its
# finish kernel) and the SwiGLU backward with down's LoRA sum, in bench_cuda's step at 4 x 2048
# (2 layers, one timed step): where their time goes (throughput, stalls), for the next design.
STEPS=build CUDA_ARCHS=90 timeout 80 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/ncu.log
B=native/build-gpu
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU" >> /tmp/ncu.log
LORA4J_BENCH_LAYERS=2 LORA4J_BENCH_STEPS=1 LORA4J_BENCH_SETTINGS=4x2048-none timeout 100 $NCU --clock-control none \
  --kernel-name regex:"lora_dy_pair_kernel|lora_dy_finish|swiglu_bwd_lora_vec" --launch-count 10 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy --section LaunchStats \
  -o /tmp/dy $B/bench_cuda >> /tmp/ncu.log 2>&1
echo "ncu rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/ncu.log
$NCU -i /tmp/dy.ncu-rep --page details > $OUT/ncu-details.txt 2>&1
cp /tmp/ncu.log $OUT/
tail -4 /tmp/ncu.log
grep -a "lora_dy_pair_kernel\|lora_dy_finish\|swiglu_bwd_lora\|Duration\|DRAM Throughput\|Memory Throughput\|Compute (SM) Throughput\|Achieved Occupancy\|Grid Size\|Stall\|Registers Per" $OUT/ncu-details.txt | cut -c1-150 | head -90
echo "total $(( $(date +%s) - T_START )) s"
