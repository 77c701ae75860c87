set -u
# Thirty-sixth session, call 2, on s36-gdiv (main c69a6bc plus the thirty-fifth session's
# next/gdiv.patch: the backward walk's divisions by the run-time G as a multiply-high by
# ceil(2^32 / G)). One plugin per variant: gdiv (the tree) and main (main's attention_sm90.cu,
# carried in .gpu: git show main:native/src/cuda/kernels/attention_sm90.cu > .gpu/attention_sm90.main.cu).
# Steps: test_ops_cuda and test_engine_cuda with LORA4J_REQUIRE_GPU=1 and memcheck on gdiv;
# Nsight Compute bytes and instructions of both; a burst; held A/B in three rounds; the contract's
# table against cuDNN with gdiv. carry [".gpu"], timeout ~400 s (about 240 s expected).
# Prediction: the PTX loses the walk's 3 rem and 1 div; ~2% fewer instructions (the share the
# walk's mod G added in the thirty-fifth session), -0.3 to -1% held.
T_START=$(date +%s)
W=/tmp/w2; mkdir -p $W/libs/main $W/libs/gdiv
B=native/build-gpu
K=native/src/cuda/kernels
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 150 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 120 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest.log 2>&1
echo "ctest rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
LORA4J_OPS_ONLY=attention timeout 60 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/san-memcheck.log 2>&1
echo "memcheck rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
cp $B/liblora4j_cuda_bench.so $W/libs/gdiv/
cp $K/attention_sm90.cu $W/attention_sm90.gdiv.cu
cp .gpu/attention_sm90.main.cu $K/attention_sm90.cu
cmake --build $B -j 16 > $W/rebuild-main.log 2>&1 || echo "rebuild main failed" >> $W/sum.log
cp $B/liblora4j_cuda_bench.so $W/libs/main/
cp $W/attention_sm90.gdiv.cu $K/attention_sm90.cu
echo "libs at $(( $(date +%s) - T_START )) s" >> $W/sum.log
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for v in main gdiv; do
  LORA4J_OPS_SECONDS=0.02 LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$v/liblora4j_cuda_bench.so timeout 45 $NCU \
    --clock-control none --kernel-name regex:attn_bwd_sm90 --launch-count 120 --csv --page raw \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,smsp__inst_executed.sum \
    $B/bench_ops attention_bwd > $W/ncu-$v.csv 2> $W/ncu-$v.err
  python3 benchmarks/ncu_bytes.py $v $W/ncu-$v.csv >> $W/ncu.md 2>> $W/ncu-sum.err
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$v/liblora4j_cuda_bench.so timeout 40 $B/bench_ops attention_bwd > $W/ops-$v.txt 2>&1
  echo "== $v" >> $W/bench.txt; grep -a "flash " $W/ops-$v.txt >> $W/bench.txt
done
echo "ncu and burst at $(( $(date +%s) - T_START )) s" >> $W/sum.log
held() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 30 python3 benchmarks/attention_held.py \
    $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
}
held main 1; held gdiv 1; held gdiv 2; held main 2; held main 3; held gdiv 3
echo "held at $(( $(date +%s) - T_START )) s" >> $W/sum.log
LORA4J_CUDA_BENCH_LIBRARY=$W/libs/gdiv/liblora4j_cuda_bench.so timeout 120 python3 \
  benchmarks/reference/attention_sustained.py $B/liblora4j_bench.so 3 \
  > $W/attention_sustained-gdiv.jsonl 2> $W/attention_sustained-gdiv.err
echo "attention_sustained rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
rm -rf $W/libs
gzip $W/ncu-*.csv
tar -C $W -czf $OUT/logs.tgz --exclude=b .
cat $W/sum.log; tail -3 $W/ncu-sum.err 2>/dev/null
grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest.log | head -3
grep -a "\[golden\] hd128 lora grads" $W/ctest.log | head -4 | cut -c1-110
grep -a "ERROR SUMMARY" $W/san-*.log
echo "| variant | shape | launches | ms | DRAM read MB | DRAM write MB | L2 GB | M instr |"; cat $W/ncu.md
cut -c1-120 $W/bench.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
python3 benchmarks/compare.py --attention-sustained $W/attention_sustained-gdiv.jsonl
