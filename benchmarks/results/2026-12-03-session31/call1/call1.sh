set -u
# Thirty-first session, call1: the persistent forward's item boundary fused (branch
# attn-fwd-boundary: an item's last P V and the next item's first S in one turn; no C75xx and no
# spills in any instantiation under -Xptxas -v). test_ops_cuda's attention cases with
# LORA4J_REQUIRE_GPU=1 (the grid checks compare the persistent form, now fused, against one
# block per query block), then the whole test_ops_cuda; bench_ops attention_fwd with the fused
# kernel (A) and main's (B, the same file as main, rebuilt in place), alternated A B A B, with
# LORA4J_ATTN_FWD_PERSIST=0 once; cuDNN's figures from torch_ops_baseline.py in the same call.
T_START=$(date +%s)
W=/tmp/w1; mkdir -p $W
B=native/build-gpu
K=native/src/cuda/kernels/attention_sm90.cu
STEPS=build CUDA_ARCHS=90 timeout 300 bash scripts/gpu/run.sh > $W/build.log 2>&1; echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda > $W/ops-attention.log 2>&1; echo "ops attention rc=$?" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 150 ./test_ops_cuda > $W/ops.log 2>&1; echo "ops rc=$?" >> $W/sum.log)
echo "tests at $(( $(date +%s) - T_START )) s" >> $W/sum.log
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd > $W/fwd-$1.txt 2>&1
  echo "== $1" >> $W/bench.txt; grep -a "flash " $W/fwd-$1.txt >> $W/bench.txt
}
bench A1
LORA4J_ATTN_FWD_PERSIST=0 bench off
for r in 1 2; do
  cp .gpu/attention_sm90.main.cu $K; cmake --build $B -j 16 > $W/rebuild-B$r.log 2>&1 || echo "rebuild B$r failed" >> $W/sum.log
  bench B$r
  cp .gpu/attention_sm90.fused.cu $K; cmake --build $B -j 16 > $W/rebuild-A$r.log 2>&1 || echo "rebuild A$r failed" >> $W/sum.log
  bench A$((r + 1))
done
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
OUT=$W timeout 120 python3 benchmarks/reference/torch_ops_baseline.py > $W/torch_ops.log 2>&1
echo "torch ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
python3 benchmarks/compare.py --attention $W/fwd-A3.txt $W/anchors_ops.json > $W/attention-vs-cudnn.txt 2>&1
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "FAIL" $W/ops-attention.log $W/ops.log | head -5; grep -ac "fwd grid.*PASS" $W/ops-attention.log; tail -1 $W/ops-attention.log; tail -1 $W/ops.log
cut -c1-130 $W/bench.txt
grep -a "cudnn" $W/torch_ops.log | cut -c1-200
cat $W/attention-vs-cudnn.txt
