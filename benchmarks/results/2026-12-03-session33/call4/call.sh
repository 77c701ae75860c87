set -u
# Thirty-third session, call 4: the Hopper backward with its consumers stepping head and query
# tile instead of dividing them out of each iteration (about 40 instructions an iteration in the
# SASS, an integer division) and addressing their dS^T stores by one XOR a chunk (about 30) (branch
# s33-walk, W) against main (M), each built once into its own plugin. SASS counts; bench_ops
# attention_bwd in bursts, M W W M; call3/sustained_ab.py (the backward op held 3 s at each
# shape, power, clock, energy per call), three rounds; on W test_ops_cuda and test_engine_cuda
# through ctest with LORA4J_REQUIRE_GPU=1 and memcheck on the attention cases (the held table
# against cuDNN left out: the session's device time is short). Before the call:
# .gpu/attention_sm90.{main,walk}.cu from main and s33-walk (carry .gpu).
T_START=$(date +%s)
C=benchmarks/results/2026-12-03-session33
W=/tmp/w4; mkdir -p $W/libs
B=native/build-gpu
K=native/src/cuda/kernels
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 120 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() {
  cp .gpu/attention_sm90.$1.cu $K/attention_sm90.cu
  cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log
}
sass() {
  o=$(find $B -name 'attention_sm90.cu.o' | head -1)
  for k in 'attn_bwd_sm90_kernelILi128ELb0' 'attn_bwd_sm90_kernelILi128ELb1' 'attn_bwd_sm90_kernelILi64ELb0'; do
    n=$(cuobjdump -sass "$o" | awk -v k="$k" '$0 ~ "Function : .*"k {f=1; next} /Function :/{f=0} f' |
      grep -cE '/\*[0-9a-f]{4,}\*/ ')
    echo "$1 $k SASS instructions $n" >> $W/sass-count.txt
  done
  cuobjdump -sass "$o" | awk '/Function : .*attn_bwd_sm90_kernelILi128ELb0/{f=1; print; next} /Function :/{f=0} f' > $W/bwd128-$1.sass
}
for v in main walk; do use $v lib; sass $v; mkdir -p $W/libs/$v; cp $B/liblora4j_cuda_bench.so $W/libs/$v/; done
echo "libs at $(( $(date +%s) - T_START )) s" >> $W/sum.log
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 40 $B/bench_ops attention_bwd > $W/ops-$1-$2.txt 2>&1
  echo "== $1 round $2" >> $W/bench.txt; grep -a "flash " $W/ops-$1-$2.txt >> $W/bench.txt
}
bench main 1; bench walk 1; bench walk 2; bench main 2
echo "burst at $(( $(date +%s) - T_START )) s" >> $W/sum.log
held() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 30 python3 $C/call3/sustained_ab.py \
    $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/sustained.jsonl 2>> $W/sustained.err
}
held main 1; held walk 1; held walk 2; held main 2; held main 3; held walk 3
echo "sustained at $(( $(date +%s) - T_START )) s" >> $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 100 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest-walk.log 2>&1
echo "ctest walk rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
LORA4J_OPS_ONLY=attention timeout 40 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-walk-memcheck.log 2>&1
echo "memcheck walk rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
rm -rf $W/libs
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
sed 's/attn_//' $W/sass-count.txt
grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest-walk.log | head -3
grep -a "\[golden\] hd128 lora grads" $W/ctest-walk.log | head -4 | cut -c1-110; grep -a "ERROR SUMMARY" $W/cudasan-walk-*.log
cut -c1-120 $W/bench.txt
python3 $C/call2/summarize.py $W/sustained.jsonl
