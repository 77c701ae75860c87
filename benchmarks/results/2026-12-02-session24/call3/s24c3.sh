set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-580}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Twenty-fourth session, call3: lora_dy_pair on 32-row tiles with 4 cp.async stages (three tiles
# in flight; LORA4J_LORA_DY_TILES=wide: the 64-row, 2-stage tiling). 1. build; 2. lora_dy op
# tests each way; 3. Nsight Compute on both tilings; 4. per-op phases each way; 5. paired whole
# step; 6. engine/ops/golden tests; 7. 7B real-width cases.
W=/tmp/w; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
grep -E "error" $W/build.log | head -5
B=native/build-gpu
for v in deep wide; do
  (cd $B && LORA4J_LORA_DY_TILES=$v LORA4J_OPS_ONLY=lora_dy LORA4J_REQUIRE_GPU=1 timeout 60 ./test_ops_cuda > $W/ld-$v.log 2>&1; echo "lora_dy $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
done
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for v in deep wide; do
  LORA4J_LORA_DY_TILES=$v LORA4J_BENCH_LAYERS=2 LORA4J_BENCH_STEPS=1 LORA4J_BENCH_SETTINGS=4x2048-none timeout 70 $NCU \
    --clock-control none --kernel-name regex:"lora_dy" --launch-count 12 \
    --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy \
    -o $W/ncu-$v $B/bench_cuda > $W/ncu-$v.log 2>&1
  $NCU -i $W/ncu-$v.ncu-rep --page details > $W/ncu-$v.txt 2>&1; rm -f $W/ncu-$v.ncu-rep
done
echo "ncu at $(( $(date +%s) - T_START )) s" >> $W/sum.log
for v in deep wide; do
  LORA4J_LORA_DY_TILES=$v LORA4J_PHASE_TIMES=$W/ph-$v.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
    timeout 45 $B/bench_cuda > $W/bph-$v.jsonl 2>&1
  python3 benchmarks/phases.py $W/bph-$v.jsonl $W/ph-$v.jsonl > $W/phases-$v.txt 2>&1
done
echo "phases at $(( $(date +%s) - T_START )) s" >> $W/sum.log
: > $W/pairs.log
if [ $(left) -gt 250 ]; then
  LORA4J_BENCH_PAIRS=24 LORA4J_BENCH_AB="LORA4J_LORA_DY_TILES=wide" LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none timeout 120 $B/bench_cuda 2>&1 | grep '"train_step_pair"' | sed "s/^/deep /" >> $W/pairs.log
  echo "pairs at $(( $(date +%s) - T_START )) s" >> $W/sum.log
fi
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 60 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
if [ $(left) -gt 120 ]; then
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 70 ctest -V -R "test_ops_cuda|test_golden|test_nf4_cuda" > $W/tests.log 2>&1; echo "tests rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
fi
if [ $(left) -gt 40 ]; then
  (cd $B && LORA4J_REALWIDTH_CASES=7b-v0.3 LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 12 )) ./test_realwidth_cuda > $W/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
fi
tar -C $W -czf $OUT/logs.tgz --exclude='*.ncu-rep' .
cat $W/sum.log
echo "== lora_dy tests"; for v in deep wide; do echo "-- $v"; grep -a "FAIL" $W/ld-$v.log | cut -c1-200 | head -5; tail -1 $W/ld-$v.log; done
echo "== ncu"; for v in deep wide; do echo "-- $v"; grep -a "lora_dy_pair_kernel\|Duration\|DRAM Throughput\|Memory Throughput\|Achieved Occupancy" $W/ncu-$v.txt | cut -c1-120 | head -24; done
for v in deep wide; do echo "== phases $v"; grep -a "ms per step\|dy B + dLoRA_B" $W/phases-$v.txt | cut -c1-110; done
echo "== pairs"; python3 benchmarks/ab.py $W/pairs.log 2>&1 | tail -2 | cut -c1-300
echo "== engine"; grep -a "FAIL" $W/eng.log | cut -c1-200 | head -8; grep -a "hd128 lora grads" $W/eng.log | cut -c1-160; tail -1 $W/eng.log
echo "== other tests"; grep -a "Passed\|Failed" $W/tests.log | cut -c1-100; grep -a "FAIL" $W/tests.log | cut -c1-200 | head -6
echo "== realwidth"; grep -a "FAIL" $W/realwidth.log | head -4; tail -1 $W/realwidth.log
echo "total $(( $(date +%s) - T_START )) s"
