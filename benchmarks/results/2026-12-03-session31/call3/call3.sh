set -u
# Thirty-first session, call3: the backward's iteration order, three ways in one build tree
# (attention_sm90.cu swapped and rebuilt in place): main (M: head after head, each head's query
# tiles from the block's first key up), var2b (R: head after head, query tiles from the last one
# down; call2 measured it beside the forward's row order) and var3 (T: query tiles from the last
# one down, the group's heads in turn at each). test_ops_cuda's attention cases on each variant
# (LORA4J_REQUIRE_GPU=1); bench_ops attention_bwd alternated M R T M R T.
T_START=$(date +%s)
W=/tmp/w3; mkdir -p $W
B=native/build-gpu
K=native/src/cuda/kernels/attention_sm90.cu
STEPS=build CUDA_ARCHS=90 timeout 300 bash scripts/gpu/run.sh > $W/build.log 2>&1; echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() { cp .gpu/attention_sm90.$1.cu $K; cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log; }
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 90 $B/bench_ops attention_bwd > $W/ops-$1.txt 2>&1
  echo "== $1" >> $W/bench.txt; grep -a "flash " $W/ops-$1.txt >> $W/bench.txt
}
for r in 1 2; do
  use main $r; bench M$r
  use var2b $r
  [ $r = 1 ] && (cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda > $W/ops-attention-var2b.log 2>&1; echo "ops attention var2b rc=$?" >> $W/sum.log)
  bench R$r
  use var3 $r
  [ $r = 1 ] && (cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda > $W/ops-attention-var3.log 2>&1; echo "ops attention var3 rc=$?" >> $W/sum.log)
  bench T$r
done
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
for v in var2b var3; do grep -a "FAIL" $W/ops-attention-$v.log | head -3; tail -1 $W/ops-attention-$v.log; done
cut -c1-130 $W/bench.txt
