set -u
T_START=$(date +%s)
export OUT
# attention op rates beside torch SDPA (cuDNN), then Nsight Compute on the sm_90a backward at 4 x 2048
STEPS="build ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" timeout 300 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
cp /tmp/run.log $OUT/
B=native/build-gpu
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU" > /tmp/ncu.log
LORA4J_OPS_SECONDS=0.05 LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 240 $NCU --clock-control none \
  --kernel-name regex:attn_bwd_sm90 --launch-skip 3 --launch-count 1 --set full --import-source no \
  -o /tmp/bwd $B/bench_ops attention_bwd >> /tmp/ncu.log 2>&1
echo "ncu rc=$?" >> /tmp/ncu.log
$NCU -i /tmp/bwd.ncu-rep --page details > $OUT/ncu-details.txt 2>&1
$NCU -i /tmp/bwd.ncu-rep --page source --csv --print-source sass > /tmp/ncu-source.csv 2>&1
gzip -c /tmp/ncu-source.csv > $OUT/ncu-source.csv.gz
tail -5 /tmp/ncu.log
grep -a "attention" /tmp/run.log | head -12
sed -n '/Section: GPU Speed Of Light Throughput/,/Section: Launch/p' $OUT/ncu-details.txt | grep -v "^ *-" | head -40
grep -a -A30 "Section: Warp State Statistics" $OUT/ncu-details.txt | head -30
echo "total $(( $(date +%s) - T_START )) s"
