set -u
# Thirty-third session, call 2: three variants of the Hopper attention backward against main's,
# each rebased on main 2cd3dd4: conv3 (the bf16 copy of each Q tile by warps 1-3 instead of 2-3),
# desc (wgmma descriptors made once and advanced by adds), both (the two together). Each built
# once into its own copy of the CUDA bench plugin; then bench_ops attention_bwd (bursts) in two
# rounds in opposite orders, and sustained_ab.py (the op held 3 s at each shape at the power cap,
# with power, clock and energy per call) in three rounds, alternating orders; then on each variant
# test_ops_cuda and test_engine_cuda (hd128 golden) through ctest with LORA4J_REQUIRE_GPU=1 and
# memcheck on the attention cases. Before the call: .gpu/attention_sm90.{main,conv3,desc,both}.cu
# and .gpu/sm90.{...}.cuh from main and branches s33-conv3, s33-desc, s33-both (carry .gpu).
T_START=$(date +%s)
C=benchmarks/results/2026-12-03-session33/call2
W=/tmp/w2; mkdir -p $W/libs
B=native/build-gpu
K=native/src/cuda/kernels
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 200 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() {
  cp .gpu/attention_sm90.$1.cu $K/attention_sm90.cu; cp .gpu/sm90.$1.cuh $K/sm90.cuh
  cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log
}
V="main conv3 desc both"
for v in $V; do use $v lib; mkdir -p $W/libs/$v; cp $B/liblora4j_cuda_bench.so $W/libs/$v/; done
echo "libs at $(( $(date +%s) - T_START )) s" >> $W/sum.log
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_bwd > $W/ops-$1-$2.txt 2>&1
  echo "== $1 round $2" >> $W/bench.txt; grep -a "flash " $W/ops-$1-$2.txt >> $W/bench.txt
}
for v in main conv3 desc both; do bench $v 1; done
for v in both desc conv3 main; do bench $v 2; done
echo "burst at $(( $(date +%s) - T_START )) s" >> $W/sum.log
held() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 40 python3 $C/sustained_ab.py \
    $B/liblora4j_bench.so $1 $2 3 >> $W/sustained.jsonl 2>> $W/sustained.err
}
for v in main conv3 desc both; do held $v 1; done
for v in both desc conv3 main; do held $v 2; done
for v in conv3 main both desc; do held $v 3; done
echo "sustained at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for v in conv3 desc both; do
  use $v test
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 120 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest-$v.log 2>&1
  echo "ctest $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  LORA4J_OPS_ONLY=attention timeout 60 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-$v-memcheck.log 2>&1
  echo "memcheck $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
rm -rf $W/libs
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
for v in conv3 desc both; do echo "-- $v"; grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest-$v.log | head -3
  grep -a "\[golden\] hd128 lora grads" $W/ctest-$v.log | head -4 | cut -c1-110; grep -a "ERROR SUMMARY" $W/cudasan-$v-*.log; done
cut -c1-120 $W/bench.txt
python3 $C/summarize.py $W/sustained.jsonl
