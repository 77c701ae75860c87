set -u
# Next session (branch attn-bwd-desc, compiled, not yet GPU-run): the backward consumers' wgmma
# descriptors made once and advanced by one add each (desc_add) instead of rebuilt from the
# address for every product (mask, shift, or and the moves to uniform registers: 8-16
# instructions beside each of the 24 shared-memory-operand HGMMA of an iteration in main's SASS,
# session32/call3/sass-bwd128.tgz). Alternated in one
# tree against main's kernel, with each build's SASS instruction count;
# then test_ops_cuda and test_engine_cuda (hd128 golden) through ctest, memcheck on the attention
# cases. Before the call: `git show main:native/src/cuda/kernels/attention_sm90.cu >
# .gpu/attention_sm90.main.cu; cp native/src/cuda/kernels/attention_sm90.cu
# .gpu/attention_sm90.desc.cu` (carry .gpu).
T_START=$(date +%s)
W=/tmp/w3; mkdir -p $W
B=native/build-gpu
K=native/src/cuda/kernels/attention_sm90.cu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 200 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() { cp .gpu/attention_sm90.$1.cu $K; cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log; }
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_bwd > $W/ops-$1.txt 2>&1
  echo "== $1" >> $W/bench.txt; grep -a "flash " $W/ops-$1.txt >> $W/bench.txt
}
sass() {
  o=$(find $B -name 'attention_sm90.cu.o' | head -1)
  cuobjdump -sass "$o" | awk '/Function : .*attn_bwd_sm90_kernelILi128ELb0/{f=1; next} /Function :/{f=0} f' |
    grep -cE '/\*[0-9a-f]{4,}\*/ ' | sed "s/^/$1 hd128 bwd SASS instructions /" >> $W/sass-count.txt
}
sass desc
bench desc-1
for r in 1 2; do use main $r; [ $r = 1 ] && sass main; bench main-$r; use desc $r; bench desc-$((r + 1)); done
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 200 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest.log 2>&1
echo "ctest rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
LORA4J_OPS_ONLY=attention timeout 60 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-attention-memcheck.log 2>&1
echo "memcheck rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
cat $W/sass-count.txt
grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest.log | head -4
grep -a "\[golden\] hd128 lora grads" $W/ctest.log | head -4
grep -a "ERROR SUMMARY" $W/cudasan-*.log | head -2
cut -c1-120 $W/bench.txt
