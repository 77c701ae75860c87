set -u
# Thirty-second session, call 2 (branch attn-bwd-lds): the Hopper attention backward's op bench
# alternated over three kernels in one tree, L = attn-bwd-lds (lse / delta four at a time,
# dS^T by stmatrix), M = main, F = attn-bwd-scale-fold (L plus the softmax scale folded into
# lse); then every ctest test with LORA4J_REQUIRE_GPU=1 and compute-sanitizer's memcheck on the
# attention cases, on F (which holds L's changes too).
# Before the call: .gpu/attention_sm90.{lds,main,fold}.cu (carry .gpu).
T_START=$(date +%s)
W=/tmp/w2; mkdir -p $W
B=native/build-gpu
K=native/src/cuda/kernels/attention_sm90.cu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 200 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() { cp .gpu/attention_sm90.$1.cu $K; cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log; }
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 90 $B/bench_ops attention_bwd > $W/ops-$1.txt 2>&1
  echo "== $1" >> $W/bench.txt; grep -a "flash " $W/ops-$1.txt >> $W/bench.txt
}
bench L1
for r in 1 2; do use main $r; bench M$r; use fold $r; bench F$r; [ $r = 1 ] && { use lds $r; bench L2; }; done
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 280 ctest -V --timeout 280) > $W/ctest-fold.log 2>&1
echo "ctest rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
LORA4J_OPS_ONLY=attention timeout 60 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-attention-memcheck.log 2>&1
echo "memcheck rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest-fold.log | head -8
grep -a "\[golden\] hd128 lora grads" $W/ctest-fold.log | head -4
grep -a "ERROR SUMMARY" $W/cudasan-*.log | head
cut -c1-120 $W/bench.txt
