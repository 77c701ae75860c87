set -u
# Thirty-fifth session, call 4 (main with the tiles walked down and up by turns, 27e5554's
# kernel): one full Nsight Compute profile of the backward's main kernel at 4 x 2048 (a launch
# after warm-up, source counters included) for its executed-instruction mix by opcode
# (benchmarks/sass_mix.py) against the thirtieth session's cuDNN export. No carry; ~150 s.
T_START=$(date +%s)
W=/tmp/w4; mkdir -p $W
B=native/build-gpu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 120 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
LORA4J_OPS_SECONDS=0.02 timeout 150 $NCU --clock-control none --set full --import-source no \
  -k regex:attn_bwd_sm90 --launch-skip 3 --launch-count 1 -o $W/ours-bwd-4x2048 \
  $B/bench_ops attention_bwd > $W/ncu.log 2>&1
echo "ncu rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
$NCU -i $W/ours-bwd-4x2048.ncu-rep --page raw --csv > $W/ours-bwd-4x2048.raw.csv 2>/dev/null
$NCU -i $W/ours-bwd-4x2048.ncu-rep --page details > $W/ours-bwd-4x2048.details.txt 2>/dev/null
$NCU -i $W/ours-bwd-4x2048.ncu-rep --page source --csv --print-source sass 2>/dev/null | gzip -c > $W/ours-bwd-4x2048.sass.csv.gz
echo "exports at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz --exclude='*.ncu-rep' --exclude=b .
cat $W/sum.log; tail -3 $W/ncu.log
grep -a "Duration\|Executed Ipc A\|Registers Per" $W/ours-bwd-4x2048.details.txt | head -5
python3 benchmarks/sass_mix.py $W/ours-bwd-4x2048.sass.csv.gz --top 12
