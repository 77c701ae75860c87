set -u
# Thirty-fifth session, first call, on main as this session left it (the backward's grid in chunks of
# 128 blocks, 1c9cc56). Variants of the backward, each built once into its own plugin: c64
# (kBwdChunk = 64: one group a chunk at 1 x 8192, four at 4 x 2048), turn (the group's heads in turn at each tile, every key block on the same head at
# once; 4-7% slower in the old grid order, where the key blocks of a group ran in different
# waves), skew (in turn from head k0 / 128 mod G, so a group's key blocks at a
# tile add into different heads' dQ rows and each (head, tile) is read by all of them within G
# iterations). DRAM and L2 bytes (ncu, benchmarks/ncu_bytes.py), one burst round, held A/B in
# three rounds, ctest's op and engine tests with LORA4J_REQUIRE_GPU=1 and memcheck on turn and
# skew (c64 is main's code at the tests' shapes), then the contract's table against cuDNN held
# alike (attention_sustained.py) with main's plugin. Before the call:
#   git show main:native/src/cuda/kernels/attention_sm90.cu > .gpu/attention_sm90.main.cu
#   sed 's/kBwdChunk = 128;/kBwdChunk = 64; /' .gpu/attention_sm90.main.cu > .gpu/attention_sm90.c64.cu
#   turn / skew: main's file with its two lambdas replaced (the s34-skew branch did not survive
#   into this checkout; same arithmetic, written without the macro):
#     turn: head_of = kvh * G + it % G;               query_of = k0 + (nqt - 1 - it / G) * kBwdBM
#     skew: head_of = kvh * G + (it + k0 / kBwdBN) % G; query_of as turn
#   git show main:native/src/cuda/kernels/sm90.cuh > .gpu/sm90.main.cuh
# carry [".gpu"], timeout ~560 s (about 420 s expected).
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
V="main c64 turn skew"
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
for v in main c64 turn skew; do held $v 1; done
for v in skew turn c64 main; do held $v 2; done
for v in turn main skew c64; do held $v 3; done
echo "held at $(( $(date +%s) - T_START )) s" >> $W/sum.log
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for v in turn skew; do
  use $v test
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 100 ctest -V -R "test_ops_cuda|test_engine_cuda") > $W/ctest-$v.log 2>&1
  echo "ctest $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  LORA4J_OPS_ONLY=attention timeout 40 $SAN --tool memcheck --error-exitcode 1 $B/test_ops_cuda > $W/cudasan-$v-memcheck.log 2>&1
  echo "memcheck $v rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
LORA4J_CUDA_BENCH_LIBRARY=$W/libs/main/liblora4j_cuda_bench.so timeout 120 python3 \
  benchmarks/reference/attention_sustained.py $B/liblora4j_bench.so 3 \
  > $W/attention_sustained-main.jsonl 2> $W/attention_sustained-main.err
echo "attention_sustained main rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
rm -rf $W/libs
gzip $W/ncu-*.csv
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log; tail -3 $W/ncu-sum.err 2>/dev/null
echo "| variant | shape | launches | ms | DRAM read MB | DRAM write MB | L2 GB | M instr |"; cat $W/ncu.md
for v in turn skew; do echo "-- $v"; grep -a "tests passed\|tests failed\|\*\*\*" $W/ctest-$v.log | head -3
  grep -a "\[golden\] hd128 lora grads" $W/ctest-$v.log | head -4 | cut -c1-110; grep -a "ERROR SUMMARY" $W/cudasan-$v-*.log; done
cut -c1-120 $W/bench.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
python3 benchmarks/compare.py --attention-sustained $W/attention_sustained-main.jsonl
