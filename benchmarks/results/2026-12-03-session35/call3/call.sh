set -u
# Thirty-fifth session, call 3, on main (the backward's grid in chunks of 128 blocks). Call1 showed
# the bytes follow how close in time a group's key blocks read the same (head, tile): c64 reached
# the ~470 MB floor but started the last chunks' longest blocks late. A model of the grid with an
# L2 of 40-50 MB (LRU) and iterations of +-20-50% jitter (session35/call3/l2_model.py) ranks
# call1's four orders as measured (c64 < main < skew < turn at both shapes) and says why: the
# first chunk's blocks start together and end apart, the next chunk's start apart (as the first
# one's short blocks end) and end together, and so on alternately. Walking the query tiles down
# aligns blocks that start together, walking them up aligns blocks that end together. Variants:
#   alt:  heads in turn from head (key block mod G) as skew, query tiles down in even chunks and up
#         in odd ones (the model: the floor, ~475 MB, at both shapes, main's makespan)
#   altm: main's head after head, query tiles down in even chunks and up in odd ones
# Both written from main's file, two lines each (see .gpu/attention_sm90.{alt,altm}.cu, made as
# call1's header says for turn / skew: `const bool up = chunk & 1;` and query_of picks the
# direction). Bytes, burst, held A/B in three rounds, ctest's op and engine tests with
# LORA4J_REQUIRE_GPU=1 and memcheck on both, then the contract's table against cuDNN on alt.
# carry [".gpu"], timeout ~560 s (about 400 s expected).
T_START=$(date +%s)
W=/tmp/w1; mkdir -p $W/libs
B=native/build-gpu
K=native/src/cuda/kernels
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 120 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
use() {
  cp .gpu/attention_sm90.$1.cu $K/attention_sm90.cu; cp .gpu/sm90.main.cuh $K/sm90.cuh
  cmake --build $B -j 16 > $W/rebuild-$1-$2.log 2>&1 || echo "rebuild $1 $2 failed" >> $W/sum.log
}
V="main alt altm"
for v in $V; do use $v lib; mkdir -p $W/libs/$v; cp $B/liblora4j_cuda_bench.so $W/libs/$v/; done
echo "libs at $(( $(date +%s) - T_START )) s" >> $W/sum.log
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for v in $V; do
  LORA4J_OPS_SECONDS=0.02 LORA4J_CUDA_BENCH_LIBRARY=$W/libs/$v/liblora4j_cuda_bench.so timeout 45 $NCU \
    --clock-control none --kernel-name regex:attn_bwd_sm90 --launch-count 120 --csv --page raw \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,smsp__inst_executed.sum \
    $B/bench_ops attention_bwd > $W/ncu-$v.csv 2> $W/ncu-$v.err
  echo "ncu $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  python3 benchmarks/ncu_bytes.py $v $W/ncu-$v.csv >> $W/ncu.md 2>> $W/ncu-sum.err
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
for v in main alt altm; do held $v 1; done
for v in altm alt main; do held $v 2; done
for v in alt main altm; do held $v 3; done
echo "held at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for v in alt altm; do
  use $v test
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 100 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest-$v.log 2>&1
  echo "ctest $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  LORA4J_OPS_ONLY=attention timeout 40 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-$v-memcheck.log 2>&1
  echo "memcheck $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
LORA4J_CUDA_BENCH_LIBRARY=$W/libs/alt/liblora4j_cuda_bench.so timeout 120 python3 \
  benchmarks/reference/attention_sustained.py $B/liblora4j_bench.so 3 \
  > $W/attention_sustained-alt.jsonl 2> $W/attention_sustained-alt.err
echo "attention_sustained alt rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
rm -rf $W/libs
gzip $W/ncu-*.csv
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log; tail -3 $W/ncu-sum.err 2>/dev/null
echo "| variant | shape | launches | ms | DRAM read MB | DRAM write MB | L2 GB | M instr |"; cat $W/ncu.md
for v in alt altm; do echo "-- $v"; grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest-$v.log | head -3
  grep -a "\[golden\] hd128 lora grads" $W/ctest-$v.log | head -4 | cut -c1-110; grep -a "ERROR SUMMARY" $W/cudasan-$v-*.log; done
cut -c1-120 $W/bench.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
python3 benchmarks/compare.py --attention-sustained $W/attention_sustained-alt.jsonl
