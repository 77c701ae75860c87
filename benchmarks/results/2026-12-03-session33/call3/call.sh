set -u
# Thirty-third session, call 3: the Hopper forward with its wgmma descriptors made once and
# advanced by adds (branch s33-fwd-desc, F) against main 4b21555 (M, the backward's descriptors
# so since call2), each built once into its own copy of the CUDA bench plugin. SASS instruction
# counts of the hd128 forward kernels (cuobjdump); bench_ops attention_fwd in bursts, M F F M;
# sustained_ab.py (the forward op held 3 s at each shape at the power cap, power, clock and energy
# per call) in three rounds; then on F test_ops_cuda and test_engine_cuda through ctest with
# LORA4J_REQUIRE_GPU=1 and memcheck on the attention cases; last, attention_sustained.py (ours
# against cuDNN, held alike) with M's plugin and with F's. Before the call:
# .gpu/attention_sm90.{main,fwdd}.cu from main and s33-fwd-desc (carry .gpu).
T_START=$(date +%s)
C=benchmarks/results/2026-12-03-session33/call3
W=/tmp/w3; mkdir -p $W/libs
B=native/build-gpu
K=native/src/cuda/kernels
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 200 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() {
  cp .gpu/attention_sm90.$1.cu $K/attention_sm90.cu
  cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log
}
sass() {
  o=$(find $B -name 'attention_sm90.cu.o' | head -1)
  for k in 'attn_fwd_sm90_kernelILi128ELb0ELb0' 'attn_fwd_sm90_kernelILi128ELb1ELb0' 'attn_bwd_sm90_kernelILi128ELb0'; do
    n=$(cuobjdump -sass "$o" | awk -v k="$k" '$0 ~ "Function : .*"k {f=1; next} /Function :/{f=0} f' |
      grep -cE '/\*[0-9a-f]{4,}\*/ ')
    echo "$1 $k SASS instructions $n" >> $W/sass-count.txt
  done
}
for v in main fwdd; do use $v lib; sass $v; mkdir -p $W/libs/$v; cp $B/liblora4j_cuda_bench.so $W/libs/$v/; done
echo "libs at $(( $(date +%s) - T_START )) s" >> $W/sum.log
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd > $W/ops-$1-$2.txt 2>&1
  echo "== $1 round $2" >> $W/bench.txt; grep -a "flash " $W/ops-$1-$2.txt >> $W/bench.txt
}
bench main 1; bench fwdd 1; bench fwdd 2; bench main 2
echo "burst at $(( $(date +%s) - T_START )) s" >> $W/sum.log
held() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 40 python3 $C/sustained_ab.py \
    $B/liblora4j_bench.so attention_fwd $1 $2 3 >> $W/sustained.jsonl 2>> $W/sustained.err
}
held main 1; held fwdd 1; held fwdd 2; held main 2; held main 3; held fwdd 3
echo "sustained at $(( $(date +%s) - T_START )) s" >> $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 120 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest-fwdd.log 2>&1
echo "ctest fwdd rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
LORA4J_OPS_ONLY=attention timeout 60 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-fwdd-memcheck.log 2>&1
echo "memcheck fwdd rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
for v in main fwdd; do
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$v/liblora4j_cuda_bench.so timeout 120 python3 \
    benchmarks/reference/attention_sustained.py $B/liblora4j_bench.so 3 \
    > $W/attention_sustained-$v.jsonl 2> $W/attention_sustained-$v.err
  echo "attention_sustained $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
rm -rf $W/libs
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
cat $W/sass-count.txt | sed 's/attn_//'
grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest-fwdd.log | head -3
grep -a "\[golden\] hd128 lora grads" $W/ctest-fwdd.log | head -4 | cut -c1-110; grep -a "ERROR SUMMARY" $W/cudasan-fwdd-*.log
cut -c1-120 $W/bench.txt
python3 benchmarks/results/2026-12-03-session33/call2/summarize.py $W/sustained.jsonl
for v in main fwdd; do echo "-- ours ($v) against cuDNN"; python3 benchmarks/compare.py --attention-sustained $W/attention_sustained-$v.jsonl; done
