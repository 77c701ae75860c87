set -u
# The Hopper backward's grid in chunks (branch s34-order, LORA4J_BWD_CHUNK): each chunk of about
# N blocks holds every key block of a few (KV head, row) groups, longest first within it, so a
# group's key blocks are in flight together on the same Q / dO tiles and dQ rows (call2: main
# moves 1.4 GB of DRAM a call at 4 x 2048, Q / dO and the dQ accumulator re-read ~3.5 times, as
# the later key blocks of a group run waves after the first). c128, c256, c512 (512 = every
# group whole, one after another). DRAM and L2 bytes (ncu), held A/B three rounds, one burst
# round, ctest's op and engine tests and memcheck on c128 and c512 (c256 is the same code at the tests' shapes). Before the call:
# .gpu/attention_sm90.cN.cu = the branch's file behind "#define LORA4J_BWD_CHUNK N".
T_START=$(date +%s)
W=/tmp/w3; mkdir -p $W/libs
B=native/build-gpu
K=native/src/cuda/kernels
D=benchmarks/results/2026-12-03-session34/call3
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 120 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() {
  cp .gpu/attention_sm90.$1.cu $K/attention_sm90.cu; cp .gpu/sm90.main.cuh $K/sm90.cuh
  cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log
}
V="main c128 c256 c512"
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
for v in main c128 c256 c512; do held $v 1; done
for v in c512 c256 c128 main; do held $v 2; done
for v in c256 main c512 c128; do held $v 3; done
echo "held at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for v in c128 c512; do
  use $v test
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 100 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest-$v.log 2>&1
  echo "ctest $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  LORA4J_OPS_ONLY=attention timeout 40 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-$v-memcheck.log 2>&1
  echo "memcheck $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
rm -rf $W/libs
gzip $W/ncu-*.csv
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log; head -c 600 $W/ncu-main.err; cat $W/ncu-sum.err | tail -3
echo "| variant | shape | launches | ms | DRAM read MB | DRAM write MB | L2 GB | Minstr |"; cat $W/ncu.md
for v in c128 c512; do echo "-- $v"; grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest-$v.log | head -3
  grep -a "\[golden\] hd128 lora grads" $W/ctest-$v.log | head -4 | cut -c1-110; grep -a "ERROR SUMMARY" $W/cudasan-$v-*.log; done
cut -c1-120 $W/bench.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
# (After the call: c512 is main's order at both shapes, C = every group; see RESULTS.md.)
