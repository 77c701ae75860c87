set -u
# Thirty-second session, first call (branch attn-bwd-fp16grad, not yet run on a GPU): the Hopper
# backward's gradient products in fp16 with a power-of-two scale on dS (no bf16 copies of K and
# Q, no conversions), against main's kernel in the same tree.
# Before the call: `git show main:native/src/cuda/kernels/attention_sm90.cu >
# .gpu/attention_sm90.main.cu` and `cp native/src/cuda/kernels/attention_sm90.cu
# .gpu/attention_sm90.f16.cu` (carry .gpu).
# 1. run.sh STEPS="build test cudasan" with LORA4J_REQUIRE_GPU=1 on the branch: every op test
#    (the attention cases against the fp32 CPU reference at 1e-2), test_golden (hd128 LoRA
#    gradients within 3e-2 of float64: the fp16 dS should lower the worst, 2.46e-2 / 2.52e-2 /
#    2.63e-2 on main), memcheck / initcheck on the attention cases;
# 2. attention_bwd alternated F M F M (main's file swapped in and rebuilt), then
#    attention_sustained.py on the branch beside cuDNN.
T_START=$(date +%s)
W=/tmp/w1; mkdir -p $W
B=native/build-gpu
K=native/src/cuda/kernels/attention_sm90.cu
STEPS="build test cudasan" CUDA_ARCHS=90 OUT=$W timeout 420 bash scripts/gpu/run.sh > $W/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/run && tar -C $W/run -xzf $W/logs.tgz && rm $W/logs.tgz
use() { cp .gpu/attention_sm90.$1.cu $K; cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log; }
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 90 $B/bench_ops attention_bwd > $W/ops-$1.txt 2>&1
  echo "== $1" >> $W/bench.txt; grep -a "flash " $W/ops-$1.txt >> $W/bench.txt
}
bench F1
for r in 1 2; do use main $r; bench M$r; use f16 $r; bench F$((r + 1)); done
LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 200 python3 benchmarks/reference/attention_sustained.py $B/liblora4j_bench.so 3 > $W/sustained.jsonl 2> $W/sustained.err
python3 benchmarks/compare.py --attention-sustained $W/sustained.jsonl > $W/sustained-table.txt 2>&1
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "tests passed\|tests failed\|Failed\|\*\*\*" $W/run/ctest.log | head -8
grep -a "hd128.*grad worst\|FAIL" $W/run/ctest.log | head -8
grep -a "ERROR SUMMARY" $W/run/cudasan-*.log | head
cut -c1-120 $W/bench.txt
cat $W/sustained-table.txt
