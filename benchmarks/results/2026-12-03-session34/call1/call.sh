set -u
# Next session, first call: the two halves of branch s33-walk (3% fewer instructions, 2-3% slower
# held in the thirty-third session's call4) timed apart against main: xor (branch s33-xor: the
# dS^T stores addressed by one XOR a chunk off the row's address) and step (branch s33-step: head
# and query tile stepped at each iteration's end instead of divided out of it), and suspend
# (branch s33-suspend: mbar_wait's try_wait with a 1 ms suspend-time hint, for the producer warps'
# re-tries, 5.1% of the backward's instructions in the thirtieth session's profile; it touches
# every Hopper kernel, so its forward is timed too). Each built once
# into its own plugin; SASS counts and the hd128 listing; bench_ops attention_bwd in bursts (one
# round: the held runs decide);
# benchmarks/attention_held.py held, three rounds in turned orders; on each variant ctest's
# test_ops_cuda and test_engine_cuda with LORA4J_REQUIRE_GPU=1 and memcheck on the attention
# cases. Before the call: for v in main xor step suspend: `git show <main|s33-$v>:native/src/
# cuda/kernels/attention_sm90.cu > .gpu/attention_sm90.$v.cu` and the same for sm90.cuh into
# .gpu/sm90.$v.cuh (carry .gpu).
T_START=$(date +%s)
W=/tmp/w1; mkdir -p $W/libs
B=native/build-gpu
K=native/src/cuda/kernels
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 120 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() {
  cp .gpu/attention_sm90.$1.cu $K/attention_sm90.cu; cp .gpu/sm90.$1.cuh $K/sm90.cuh
  cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log
}
sass() {
  o=$(find $B -name 'attention_sm90.cu.o' | head -1)
  n=$(cuobjdump -sass "$o" | awk '/Function : .*attn_bwd_sm90_kernelILi128ELb0/{f=1; next} /Function :/{f=0} f' |
    grep -cE '/\*[0-9a-f]{4,}\*/ ')
  echo "$1 hd128 bwd SASS instructions $n" >> $W/sass-count.txt
  cuobjdump -sass "$o" | awk '/Function : .*attn_bwd_sm90_kernelILi128ELb0/{f=1; print; next} /Function :/{f=0} f' > $W/bwd128-$1.sass
}
V="main xor step suspend"
for v in $V; do use $v lib; sass $v; mkdir -p $W/libs/$v; cp $B/liblora4j_cuda_bench.so $W/libs/$v/; done
echo "libs at $(( $(date +%s) - T_START )) s" >> $W/sum.log
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 40 $B/bench_ops attention_bwd > $W/ops-$1-$2.txt 2>&1
  echo "== $1 round $2" >> $W/bench.txt; grep -a "flash " $W/ops-$1-$2.txt >> $W/bench.txt
}
for v in main xor step suspend; do bench $v 1; done
echo "burst at $(( $(date +%s) - T_START )) s" >> $W/sum.log
heldf() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 30 python3 benchmarks/attention_held.py \
    $B/liblora4j_bench.so attention_fwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
}
held() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 30 python3 benchmarks/attention_held.py \
    $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
}
for v in main xor step suspend; do held $v 1; done
for v in suspend step xor main; do held $v 2; done
for v in xor main suspend step; do held $v 3; done
heldf main 1; heldf suspend 1; heldf suspend 2; heldf main 2
echo "sustained at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for v in xor step suspend; do
  use $v test
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 100 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest-$v.log 2>&1
  echo "ctest $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  LORA4J_OPS_ONLY=attention timeout 40 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-$v-memcheck.log 2>&1
  echo "memcheck $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
rm -rf $W/libs
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log $W/sass-count.txt
for v in xor step suspend; do echo "-- $v"; grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest-$v.log | head -3
  grep -a "\[golden\] hd128 lora grads" $W/ctest-$v.log | head -4 | cut -c1-110; grep -a "ERROR SUMMARY" $W/cudasan-$v-*.log; done
cut -c1-120 $W/bench.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
