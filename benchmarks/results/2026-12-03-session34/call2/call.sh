set -u
# L2 eviction hints for the Hopper backward's bulk copies (branch s34-hint, LORA4J_BWD_HINTS):
# h1 K / V loads evict-first (each block reads its tile once), h3 plus Q / dO evict-last (read by
# every key block of the KV head), h5 plus the dQ reduce-adds evict-last instead, h7 all three.
# DRAM and L2 bytes of each (ncu, metrics only, every launch of bench_ops attention_bwd), then
# held A/B (three rounds in turned orders) and one burst round; ctest's op and engine tests and
# memcheck on h7 (every hinted copy). Before the call: .gpu/attention_sm90.h{1,3,5,7}.cu = the
# branch's file behind a "#define LORA4J_BWD_HINTS n" line, .gpu/attention_sm90.main.cu = main's,
# .gpu/sm90.*.cuh = main's sm90.cuh.
T_START=$(date +%s)
W=/tmp/w2; mkdir -p $W/libs
B=native/build-gpu
K=native/src/cuda/kernels
D=benchmarks/results/2026-12-03-session34/call2
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 120 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() {
  cp .gpu/attention_sm90.$1.cu $K/attention_sm90.cu; cp .gpu/sm90.main.cuh $K/sm90.cuh
  cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log
}
V="main h1 h3 h5 h7"
for v in $V; do use $v lib; mkdir -p $W/libs/$v; cp $B/liblora4j_cuda_bench.so $W/libs/$v/; done
echo "libs at $(( $(date +%s) - T_START )) s" >> $W/sum.log
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for v in $V; do
  LORA4J_OPS_SECONDS=0.02 LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$v/liblora4j_cuda_bench.so timeout 45 $NCU \
    --clock-control none --kernel-name regex:attn_bwd_sm90 --launch-count 120 --csv --page raw \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,smsp__inst_executed.sum \
    $B/bench_ops attention_bwd > $W/ncu-$v.csv 2> $W/ncu-$v.err
  echo "ncu $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  python3 $D/ncu_sum.py $v $W/ncu-$v.csv >> $W/ncu.md 2>> $W/ncu-sum.err
done
bench() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 40 $B/bench_ops attention_bwd > $W/ops-$1-$2.txt 2>&1
  echo "== $1 round $2" >> $W/bench.txt; grep -a "flash " $W/ops-$1-$2.txt >> $W/bench.txt
}
for v in $V; do bench $v 1; done
echo "burst at $(( $(date +%s) - T_START )) s" >> $W/sum.log
held() {
  LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$1/liblora4j_cuda_bench.so timeout 30 python3 benchmarks/attention_held.py \
    $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
}
for v in main h1 h3 h5 h7; do held $v 1; done
for v in h7 h5 h3 h1 main; do held $v 2; done
for v in h3 main h7 h1 h5; do held $v 3; done
echo "held at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
use h7 test
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 100 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest-h7.log 2>&1
echo "ctest h7 rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
LORA4J_OPS_ONLY=attention timeout 40 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-h7-memcheck.log 2>&1
echo "memcheck h7 rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
rm -rf $W/libs
gzip $W/ncu-*.csv
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log; head -c 600 $W/ncu-main.err; cat $W/ncu-sum.err | tail -3
echo "| variant | shape | launches | ms | DRAM read MB | DRAM write MB | L2 GB | Minstr |"; cat $W/ncu.md
echo "-- h7"; grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest-h7.log | head -3
grep -a "\[golden\] hd128 lora grads" $W/ctest-h7.log | head -4 | cut -c1-110; grep -a "ERROR SUMMARY" $W/cudasan-h7-*.log
cut -c1-120 $W/bench.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
