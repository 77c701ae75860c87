set -u
# Thirty-first session, call4: branch attn-fwd-order, the backward's query tiles from the last
# one down, head after head (call3 measured it). The whole ctest suite with LORA4J_REQUIRE_GPU=1
# (run.sh STEPS="build test cudasan", sm_80 and sm_90a); bench_ops attention_fwd / attention_bwd,
# two rounds; the reference script's attention anchors (torch_ops_baseline.py, batched timing)
# and compare.py --attention on them, in the same call.
T_START=$(date +%s)
W=/tmp/w4; mkdir -p $W
B=native/build-gpu
STEPS="build test cudasan" CUDA_ARCHS="80;90" OUT=$W timeout 420 bash scripts/gpu/run.sh > $W/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
for round in 1 2; do
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd attention_bwd > $W/ops-$round.txt 2>&1
  echo "== round $round" >> $W/bench.txt; grep -a "flash " $W/ops-$round.txt >> $W/bench.txt
done
echo "ops at $(( $(date +%s) - T_START )) s" >> $W/sum.log
OUT=$W timeout 120 python3 benchmarks/reference/torch_ops_baseline.py > $W/torch_ops.log 2>&1
echo "torch ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
python3 benchmarks/compare.py --attention $W/ops-2.txt $W/anchors_ops.json > $W/attention-vs-cudnn.txt 2>&1
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "tests passed\|tests failed\|Failed\|\*\*\*" $W/ctest.log | head -12
grep -a "ERROR SUMMARY" $W/cudasan-*.log | head
grep -a "fwd grid.*FAIL" $W/tests.log | head -3
cut -c1-120 $W/bench.txt
grep -a "cudnn" $W/torch_ops.log | cut -c1-200
cat $W/attention-vs-cudnn.txt
echo "total $(( $(date +%s) - T_START )) s"
