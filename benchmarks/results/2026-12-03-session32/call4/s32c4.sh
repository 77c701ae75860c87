set -u
# Thirty-second session, call 4 (branch attn-bwd-dq-banks): the backward's dQ staging without
# bank conflicts (D) against main (M), alternated D M D M D in one tree; then on D
# test_ops_cuda (every case, the attention ones against the fp32 CPU reference),
# test_engine_cuda (the hd128 golden) with LORA4J_REQUIRE_GPU=1, and memcheck on the attention
# cases. Before the call: .gpu/attention_sm90.{main,dqb}.cu (carry .gpu).
T_START=$(date +%s)
W=/tmp/w4; mkdir -p $W
B=native/build-gpu
K=native/src/cuda/kernels/attention_sm90.cu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 200 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() { cp .gpu/attention_sm90.$1.cu $K; cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log; }
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_bwd > $W/ops-$1.txt 2>&1
  echo "== $1" >> $W/bench.txt; grep -a "flash " $W/ops-$1.txt >> $W/bench.txt
}
bench dqb-1
for r in 1 2; do use main $r; bench main-$r; use dqb $r; bench dqb-$((r + 1)); done
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
LORA4J_REQUIRE_GPU=1 timeout 60 $B/test_ops_cuda > $W/test_ops_cuda.log 2>&1
echo "test_ops_cuda rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
LORA4J_REQUIRE_GPU=1 timeout 30 $B/test_engine_cuda > $W/test_engine_cuda.log 2>&1
echo "test_engine_cuda rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
LORA4J_OPS_ONLY=attention timeout 60 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-attention-memcheck.log 2>&1
echo "memcheck rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a -c " ok$" $W/test_ops_cuda.log; grep -a "FAIL\|fail" $W/test_ops_cuda.log | head -5; tail -2 $W/test_ops_cuda.log
grep -a "\[golden\] hd128 lora grads" $W/test_engine_cuda.log | head -4; tail -1 $W/test_engine_cuda.log
grep -a "ERROR SUMMARY" $W/cudasan-*.log | head -2
cut -c1-120 $W/bench.txt
