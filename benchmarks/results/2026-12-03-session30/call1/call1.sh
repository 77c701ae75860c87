set -u
# Thirtieth session, call1: Nsight Compute on our Hopper attention kernels (forward, backward)
# and on torch SDPA's cuDNN kernels at the same shapes (4 x 2048, 1 x 8192; Mistral-7B's heads,
# hd128, causal, GQA), the full section set with the clocks left alone: launch shape (grid,
# block, registers, shared memory: is cuDNN's forward persistent?), the SM clock, issue and
# tensor-pipe activity, stall reasons. One table (ncu_table.py) and the SASS source pages.
T_START=$(date +%s)
D=benchmarks/results/2026-12-03-session30/call1
W=/tmp/w1; mkdir -p $W
P="nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr -lineinfo"
($P -Inative/src -Inative/include native/bench/attn_fwd_probe.cu -o $W/fwd_probe > $W/build-fwd.log 2>&1; echo "fwd probe build rc=$?" >> $W/sum.log) &
($P -Inative/src -Inative/include native/bench/attn_bwd_probe.cu -o $W/bwd_probe > $W/build-bwd.log 2>&1; echo "bwd probe build rc=$?" >> $W/sum.log) &
wait
echo "builds at $(( $(date +%s) - T_START )) s" >> $W/sum.log
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU" >> $W/sum.log
N="$NCU --clock-control none --set full --import-source no"
for shape in "4 2048" "1 8192"; do
  tag=${shape/ /x}
  timeout 120 $N -k regex:attn_fwd_sm90 --launch-skip 4 --launch-count 1 -o $W/ours-fwd-$tag $W/fwd_probe $shape > $W/ncu-ours-fwd-$tag.log 2>&1
  echo "ours fwd $tag rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  timeout 120 $N -k regex:attn_bwd_sm90 --launch-skip 4 --launch-count 1 -o $W/ours-bwd-$tag $W/bwd_probe $shape > $W/ncu-ours-bwd-$tag.log 2>&1
  echo "ours bwd $tag rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  timeout 180 $N --profile-from-start off -o $W/cudnn-$tag python3 $D/cudnn_sdpa.py $shape > $W/ncu-cudnn-$tag.log 2>&1
  echo "cudnn $tag rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
for r in $W/*.ncu-rep; do
  b=${r%.ncu-rep}
  $NCU -i $r --page raw --csv > $b.raw.csv 2>/dev/null
  $NCU -i $r --page details > $b.details.txt 2>/dev/null
  $NCU -i $r --page source --csv --print-source sass 2>/dev/null | gzip -c > $b.sass.csv.gz
done
echo "exports at $(( $(date +%s) - T_START )) s" >> $W/sum.log
python3 $D/ncu_table.py ours-fwd-4x2048=$W/ours-fwd-4x2048.raw.csv ours-bwd-4x2048=$W/ours-bwd-4x2048.raw.csv \
  cudnn-4x2048=$W/cudnn-4x2048.raw.csv > $W/table-4x2048.txt 2>&1
python3 $D/ncu_table.py ours-fwd-1x8192=$W/ours-fwd-1x8192.raw.csv ours-bwd-1x8192=$W/ours-bwd-1x8192.raw.csv \
  cudnn-1x8192=$W/cudnn-1x8192.raw.csv > $W/table-1x8192.txt 2>&1
tar -C $W -czf $OUT/logs.tgz --exclude=fwd_probe --exclude=bwd_probe --exclude='*.ncu-rep' .
cp $W/*.ncu-rep $OUT/ 2>/dev/null
cat $W/sum.log
tail -3 $W/ncu-cudnn-4x2048.log
cut -c1-140 $W/table-4x2048.txt
cut -c1-140 $W/table-1x8192.txt
echo "total $(( $(date +%s) - T_START )) s"
